"""The BentoML scoring service, the decision policy and the decision log."""
