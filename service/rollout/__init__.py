"""Deployment stages and guardrails: the experiments' persisted stage and weights, shared by every replica."""
