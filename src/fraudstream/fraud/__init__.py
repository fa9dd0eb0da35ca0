"""The fraud application: the tutorial detector and the dynamic rules engine."""
