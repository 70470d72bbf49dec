(function () {
  var frames = Array.prototype.slice.call(document.querySelectorAll('section.frame'));
  var where = document.getElementById('where');
  var only = document.getElementById('only');
  var current = -1;
  function show(n) {
    current = Math.max(0, Math.min(frames.length - 1, n));
    frames.forEach(function (f, k) {
      f.classList.toggle('current', k === current);
      f.hidden = only.checked && k !== current;
    });
    where.textContent = 'frame ' + current + ' of ' + (frames.length - 1) +
      ' (steps ' + frames[current].getAttribute('data-steps') + ')';
    frames[current].scrollIntoView({block: 'nearest'});
  }
  document.getElementById('prev').addEventListener('click', function () { show(current - 1); });
  document.getElementById('next').addEventListener('click', function () { show(current + 1); });
  only.addEventListener('change', function () { show(current < 0 ? 0 : current); });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'ArrowRight' || e.key === 'j') { show(current + 1); e.preventDefault(); }
    if (e.key === 'ArrowLeft' || e.key === 'k') { show(current - 1); e.preventDefault(); }
  });
  Array.prototype.forEach.call(document.querySelectorAll('.lane-step'), function (r) {
    r.addEventListener('click', function (e) {
      show(Number(r.getAttribute('data-frame'))); e.preventDefault();
    });
  });
})();
