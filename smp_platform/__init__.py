"""smp-platform: feature-store backed popularity prediction for social media posts."""

__version__ = "0.1.0"
