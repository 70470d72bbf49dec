"""pytest configuration: load the hypothesis profile the environment selects."""

from models.profiles import load_selected_profile

load_selected_profile()
