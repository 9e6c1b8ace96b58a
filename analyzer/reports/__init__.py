"""Reports over the store: human text, JSON Lines, CSV."""
