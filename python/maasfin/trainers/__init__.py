"""Training: compile/fit/evaluate/predict (trainer) on top of the data boundary (inputs)."""
