"""A tiny corridor env for tests, demos and the learner's CPU learning test."""
