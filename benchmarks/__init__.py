"""meshlib's benchmarks: speed measured as ratios against plain httpx, never asserted in tests."""
