"""The image's A/B update pieces: the Pi firmware's tryboot as RAUC sees it, and the commit gate."""
