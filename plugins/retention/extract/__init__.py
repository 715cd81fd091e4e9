"""Extraction from third-party APIs (Stripe) into the warehouse's ``raw`` schema."""
