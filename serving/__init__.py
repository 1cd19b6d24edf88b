"""The BentoML scoring service, its front door (guard, health, error answers), the decision
log, feedback and API tokens."""
