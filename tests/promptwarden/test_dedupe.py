"""The job cache that keeps progress edits and repeats of a job from being screened twice."""

from promptwarden.dedupe import JobKeyer, SeenCache, job_key


def test_repeats_of_a_job_are_recognised_within_ttl() -> None:
    now = [0.0]
    cache = SeenCache(ttl=60, clock=lambda: now[0])
    keyer = JobKeyer.generate()
    key = job_key(keyer, 1, 42, "A  Cat  --ar 3:2")
    assert cache.mark(key) is True
    # The same job, other spacing and case:
    assert cache.mark(job_key(keyer, 1, 42, "a cat --ar 3:2")) is False
    assert cache.mark(job_key(keyer, 1, 43, "a cat --ar 3:2")) is True  # someone else's job
    assert cache.mark(job_key(keyer, 2, 42, "a cat --ar 3:2")) is True  # another guild
    now[0] = 61 + 60
    assert cache.mark(key) is True  # expired


def test_seen_cache_is_bounded() -> None:
    cache = SeenCache(max_items=100)
    for i in range(1000):
        cache.mark(i)
    assert len(cache) == 100
    assert cache.seen(999) and not cache.seen(0)
