"""The demo world: synthetic Quebec booking systems that speak real protocols."""
