"""The course's submission service (`grader serve`): students hand in and read reports, TAs watch and export."""
