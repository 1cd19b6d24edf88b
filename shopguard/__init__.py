"""ShopGuard: moderation for livestream e-commerce. The one CLI lives in ``shopguard.cli``."""

__version__ = "0.1.0"
