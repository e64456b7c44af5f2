"""What grading costs beyond the training itself: `python -m bench [--quick] [--only NAME ...]`."""
