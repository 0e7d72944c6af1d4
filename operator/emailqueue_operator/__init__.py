"""The kopf operator that reconciles EmailQueue resources."""
