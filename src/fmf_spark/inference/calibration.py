"""What the provider really charges, and which share of its quota is ours.

The limiter (:class:`~fmf_spark.inference.limiter.QuotaBucket`) paces on a quota and a
token charge per request. Both are only what the configuration and the documented
estimate say (prompt + ``max_tokens``, the whole deployment to ourselves).
:class:`Calibration` corrects them from what the provider tells us, through three
numbers the bucket reads:

- :meth:`Calibration.charge`: the provider's charge for a request we estimate at
  ``tokens`` (``scale * tokens``);
- :meth:`Calibration.request_share` / :meth:`Calibration.token_share`: the share of the
  configured RPM / TPM that is left for this job.

How they are learned
--------------------
Azure OpenAI and OpenAI send ``x-ratelimit-remaining-requests`` and
``x-ratelimit-remaining-tokens`` with every answer: what is left of the current window
right after this request was admitted, so the headers of our answers, ordered by
remaining requests, are the provider's own admission order. Answers are grouped by
window (the time the request was sent plus ``x-ratelimit-reset-*`` is the end of its
window).

- **Charge.** Two of our answers in one window whose remaining requests differ by
  exactly one were admitted one after the other, so the drop in remaining tokens
  between them is what the provider charged the later one (with the ``static``
  limiter, a gap of up to ``parts`` is the job's other tasks sending requests like
  ours, and the drop is their charge together). ``scale`` is the sum of
  those charges over the sum of our estimates for the same requests (the last
  ``samples`` pairs). An endpoint that charges only ``max_tokens`` shows up as a scale
  well below 1, so the token dimension stops binding and the job paces on the quota
  that does bind; a provider that charges more than the estimate raises the scale.
- **Share.** Once a window is over (its end plus a few answer latencies, so our
  answers from it are in), the requests the provider had admitted by our last
  observation, ``limit - remaining``, minus the ones that were ours, are someone
  else's. With the ``static`` limiter the other tasks of the job are counted out (they
  send as much as we do). The fraction of the window's quota used by others is smoothed
  over windows (exponentially weighted mean and deviation); the share left for us is
  ``1 - mean - max(headroom, z * deviation)``: the co-tenant's average use and a margin
  for its bursts (which also covers the jitter the bucket's headroom is for). When the
  co-tenant goes away (or comes), two windows in a row far from the mean restart it,
  and the share grows back (or shrinks) at once. Until the first window is over, the share comes from the current window
  so far (the others' requests projected to the whole window), so a co-tenant met at
  start-up costs at most part of one window. The same holds for tokens, with our
  requests counted at ``scale`` times the estimate. A 429 whose headers show the window
  spent is an observation like any other (the window was full).
- **No headers** (Bedrock): the charge stays the estimate, and a throttle is the only
  sign of a co-tenant or a smaller quota: each one cuts the share by ``cut``
  (once per window at most), and every window without one gives back ``regrow`` (an
  AIMD loop, like TCP's: the share settles just under what the provider admits).

The object is not thread-safe; the bucket calls it under its lock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fmf_spark.inference.base import RateLimitInfo
from fmf_spark.observability.logging import get_logger

log = get_logger(__name__)

#: a learned scale outside these bounds is a misreading, not a provider
MIN_SCALE, MAX_SCALE = 0.02, 10.0
#: the least share of the quota we keep, whatever the others use
MIN_SHARE = 0.05


class _Ewm:
    """Exponentially weighted mean and standard deviation of one series.

    Two values in a row further than ``3 * std + jump`` from the mean, on the same
    side, are a new regime (a co-tenant came or went), not noise: the mean restarts from
    the second instead of drifting there over many windows. One such value alone is a
    burst, and is averaged in like any other.
    """

    def __init__(self, alpha: float, jump: float) -> None:
        self.alpha = alpha
        self.jump = jump
        self.n = 0
        self.mean = 0.0
        self.var = 0.0
        self._outlier = 0.0  # sign of the last value's jump (0: it was no jump)

    def add(self, x: float) -> None:
        self.n += 1
        if self.n == 1:
            self.mean, self.var = x, 0.0
            return
        d = x - self.mean
        side = math.copysign(1.0, d) if abs(d) > 3 * self.std + self.jump else 0.0
        if side and side == self._outlier:
            self.mean, self._outlier = x, 0.0
            return
        self._outlier = side
        self.mean += self.alpha * d
        if not side:  # a jump says nothing of the spread, and would hide the next one
            self.var = (1 - self.alpha) * (self.var + self.alpha * d * d)

    @property
    def std(self) -> float:
        return math.sqrt(max(0.0, self.var))


@dataclass
class _Obs:
    """One answer of ours: what the headers said was left after it."""

    remaining_requests: int | None
    remaining_tokens: int | None
    estimate: float
    admitted: bool
    sent_at: float
    reset: float | None


@dataclass
class _Window:
    """Our answers from one provider window."""

    end: float
    aligned: bool  # the end comes from the provider's reset headers
    obs: list[_Obs] = field(default_factory=list)
    #: admitted answers by remaining requests (finds the one admitted just before)
    by_remaining: dict[int, _Obs] = field(default_factory=dict)


class Calibration:
    """Learns the provider's charge per request and the share of its quota left to us.

    Args:
        requests_per_minute: the configured RPM of this limiter (``None``: not limited).
        tokens_per_minute: the configured TPM of this limiter.
        window_s: the provider's enforcement window.
        parts: limiters the deployment's quota is split over (``static`` mode); the
            provider's window holds ``parts`` times ours.
        headroom: the share of whatever quota it paces on that the bucket leaves free.
        alpha: weight of the newest window in the smoothed others' use.
        z: deviations of the others' use kept free for their bursts.
        jump: a change of the others' use (share of the quota) beyond three deviations
            plus this, two windows in a row, is taken at once, not smoothed.
        samples: adjacent-answer pairs the charge scale is averaged over.
        cut: share kept after a throttle that came without headers.
        regrow: share given back per window without one.

    Example:
        >>> cal = Calibration(600, 100_000, 10.0)
        >>> cal.charge(200), cal.request_share()
        (200.0, 1.0)
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        window_s: float,
        *,
        parts: int = 1,
        headroom: float = 0.0,
        alpha: float = 0.3,
        z: float = 0.5,
        jump: float = 0.05,
        samples: int = 64,
        cut: float = 0.85,
        regrow: float = 0.05,
    ) -> None:
        self.window_s = window_s
        self.parts = max(1, parts)
        scale = window_s / 60.0 * self.parts
        #: the provider's per-window limits for the whole deployment
        self.window_requests = (
            None if requests_per_minute is None else math.floor(requests_per_minute * scale)
        )
        self.window_tokens = (
            None if tokens_per_minute is None else math.floor(tokens_per_minute * scale)
        )
        self.headroom = headroom
        self.z = z
        self.cut = cut
        self.regrow = regrow
        #: provider charge per token of our estimate
        self.scale = 1.0
        self._pairs: deque[tuple[float, float]] = deque(maxlen=samples)
        self._windows: list[_Window] = []
        self._others_requests = _Ewm(alpha, jump)
        self._others_tokens = _Ewm(alpha, jump)
        self._early_requests: float | None = None  # before the first window is over
        self._early_tokens: float | None = None
        self._ages: deque[float] = deque(maxlen=32)
        self._aimd = 1.0
        self._cut_at = self._throttled_at = self._grown_at = -math.inf

    # --- what the bucket reads --------------------------------------------------------

    def charge(self, tokens: float) -> float:
        """The provider's charge for a request we estimate at ``tokens``."""
        return tokens * self.scale

    def request_share(self) -> float:
        """Share of the configured RPM left for us."""
        return min(self._share(self._others_requests, self._early_requests), self._aimd)

    def token_share(self) -> float:
        """Share of the configured TPM left for us."""
        return min(self._share(self._others_tokens, self._early_tokens), self._aimd)

    def _share(self, others: _Ewm, early: float | None) -> float:
        # before the first window is over, what the current one shows so far
        mean, std = (others.mean, others.std) if others.n else (early or 0.0, 0.0)
        if mean <= 0.0:
            return 1.0
        # the bucket keeps ``headroom`` free of whatever share it is given; with others
        # on the deployment the margin for their bursts covers the same jitter, so the
        # margin kept is the larger of the two, not both
        left = 1.0 - mean - max(self.headroom, self.z * std)
        return min(1.0, max(MIN_SHARE, left / (1.0 - self.headroom)))

    def snapshot(self) -> dict[str, Any]:
        """The learned values (for logs, benchmarks and tests)."""
        return {
            "scale": self.scale,
            "charge_samples": len(self._pairs),
            "request_share": self.request_share(),
            "token_share": self.token_share(),
            "others_requests": self._others_requests.mean,
            "others_tokens": self._others_tokens.mean,
            "windows_seen": self._others_requests.n,
            "throttle_share": self._aimd,
        }

    # --- what the bucket tells it -----------------------------------------------------

    def observe(
        self,
        now: float,
        *,
        sent_at: float,
        estimate: float,
        rate_limit: RateLimitInfo | None,
        rejected: bool,
    ) -> None:
        """One answer of ours: admitted (``rejected=False``) or a 429.

        Args:
            now: the bucket's clock.
            sent_at: when the request was sent (the headers describe that moment).
            estimate: our token estimate for it (unscaled).
            rate_limit: its ``x-ratelimit-*`` headers, ``None`` when it had none.
            rejected: it was throttled (a 429).
        """
        self._ages.append(max(0.0, now - sent_at))
        if rate_limit is None or (
            rate_limit.remaining_requests is None and rate_limit.remaining_tokens is None
        ):
            self._throttle_only(now, rejected)
        else:
            self._headers(sent_at, estimate, rate_limit, rejected)
        self._close_windows(now)

    def _throttle_only(self, now: float, rejected: bool) -> None:
        # one step per window at most: the throttles of one window are one signal, and
        # the share grows only after a whole window without any
        if rejected:
            if now - self._cut_at >= self.window_s:
                self._aimd = max(MIN_SHARE, self._aimd * self.cut)
                self._cut_at = now
                log.info(
                    "throttled without rate-limit headers: pacing at %.0f %%", 100 * self._aimd
                )
            self._throttled_at = self._grown_at = now
        elif self._aimd < 1.0 and now - max(self._throttled_at, self._grown_at) >= self.window_s:
            self._aimd = min(1.0, self._aimd + self.regrow)
            self._grown_at = now

    def _headers(self, sent_at: float, estimate: float, rl: RateLimitInfo, rejected: bool) -> None:
        if rejected and not self._spent(rl, estimate):
            return  # a 429 with room left (the provider was busy): says nothing of the quota
        reset = rl.reset_requests_s if rl.reset_requests_s is not None else rl.reset_tokens_s
        obs = _Obs(
            rl.remaining_requests, rl.remaining_tokens, estimate, not rejected, sent_at, reset
        )
        window = self._window_of(sent_at, reset)
        window.obs.append(obs)
        r = obs.remaining_requests
        if not obs.admitted or r is None:
            return
        window.by_remaining[r] = obs
        # the answer admitted just before this one, and the one just after; with the
        # static limiter the job's other tasks send the same requests in between, so
        # up to ``parts - 1`` admissions between two of ours are still ours to count
        for gap in range(1, self.parts + 1):
            if (before := window.by_remaining.get(r + gap)) is not None:
                self._pair(before, obs, gap)
                break
        for gap in range(1, self.parts + 1):
            if (after := window.by_remaining.get(r - gap)) is not None:
                self._pair(obs, after, gap)
                break
        if window.aligned and not self._others_requests.n and len(window.obs) % 4 == 0:
            self._early(window)  # every few answers: it walks the whole window

    def _spent(self, rl: RateLimitInfo, estimate: float) -> bool:
        return (rl.remaining_requests is not None and rl.remaining_requests < 1) or (
            rl.remaining_tokens is not None and rl.remaining_tokens < self.charge(estimate)
        )

    def _window_of(self, sent_at: float, reset: float | None) -> _Window:
        if reset is None:
            # no reset header: windows of our own clock, good enough to find adjacent pairs
            end = (math.floor(sent_at / self.window_s) + 1) * self.window_s
            aligned = False
        else:
            end, aligned = sent_at + reset, True
        tolerance = 0.25 * self.window_s
        for window in self._windows:
            if window.aligned == aligned and abs(window.end - end) <= tolerance:
                return window
        window = _Window(end, aligned)
        self._windows.append(window)
        return window

    def _pair(self, before: _Obs, after: _Obs, gap: int) -> None:
        if before.remaining_tokens is None or after.remaining_tokens is None:
            return
        charged = before.remaining_tokens - after.remaining_tokens
        if charged < 0 or after.estimate <= 0:
            return  # not one after the other after all (a window boundary)
        self._pairs.append((float(charged), gap * after.estimate))
        if len(self._pairs) >= 3:
            total_charged = sum(c for c, _ in self._pairs)
            total_estimated = sum(e for _, e in self._pairs)
            scale = min(MAX_SCALE, max(MIN_SCALE, total_charged / total_estimated))
            if abs(scale - self.scale) > 0.05 * self.scale:
                log.info("the provider charges %.2fx the token estimate", scale)
            self.scale = scale

    # --- the others' use, per window ---------------------------------------------------

    def _others(
        self, window: _Window, *, complete: bool = False
    ) -> tuple[float | None, float | None]:
        """Fractions of the window's request and token quota used by someone else.

        ``(None, None)`` when we did not see the window to its end (our last answer
        from it came early, and it was not full): the others' later requests are
        unknown, and taking the window for a quiet one would invite 429s.
        """
        admitted = [o for o in window.obs if o.admitted]
        requests: float | None = None
        tokens: float | None = None
        if not complete and not any(not o.admitted for o in window.obs):
            resets = [o.reset for o in window.obs if o.reset is not None]
            if not resets or min(resets) > 0.25 * self.window_s:
                return None, None
        left_r = [o.remaining_requests for o in window.obs if o.remaining_requests is not None]
        if self.window_requests and left_r:
            last = min(left_r)  # the provider's count at our last sight of the window
            ours = sum(1 for o in admitted if (o.remaining_requests or 0) >= last)
            others = (self.window_requests - last) - ours
            others -= (self.parts - 1) * len(admitted)  # our own static siblings
            requests = min(1.0, max(0.0, others / self.window_requests))
        left_t = [o.remaining_tokens for o in window.obs if o.remaining_tokens is not None]
        if self.window_tokens and left_t:
            last_t = min(left_t)
            ours_t = sum(
                self.charge(o.estimate) for o in admitted if (o.remaining_tokens or 0) >= last_t
            )
            others_t = (self.window_tokens - last_t) - ours_t
            others_t -= (self.parts - 1) * sum(self.charge(o.estimate) for o in admitted)
            tokens = min(1.0, max(0.0, others_t / self.window_tokens))
        return requests, tokens

    def _early(self, window: _Window) -> None:
        """Before any window is over: the others' use so far, projected to the window."""
        resets = [o.reset for o in window.obs if o.reset is not None]
        elapsed = 1.0 - min(resets) / self.window_s if resets else 0.0
        if elapsed < 0.2:
            return  # too little of the window seen to project
        requests, tokens = self._others(window, complete=True)
        if requests is not None:
            self._early_requests = min(1.0, requests / elapsed)
        if tokens is not None:
            self._early_tokens = min(1.0, tokens / elapsed)

    def _close_windows(self, now: float) -> None:
        # our answers from a window arrive up to one latency after it ends
        settle = min(self.window_s, max(0.25, 2.0 * max(self._ages, default=0.0)))
        still_open = []
        for window in sorted(self._windows, key=lambda w: w.end):
            if window.end + settle > now:
                still_open.append(window)
                continue
            if not window.aligned:
                continue
            requests, tokens = self._others(window)
            if requests is not None:
                self._others_requests.add(requests)
            if tokens is not None:
                self._others_tokens.add(tokens)
            if (requests or 0) > 0.05 or (tokens or 0) > 0.05:
                log.debug(
                    "window ending %.1f: others used %.0f %% of requests, %.0f %% of tokens",
                    window.end,
                    100 * (requests or 0),
                    100 * (tokens or 0),
                )
        self._windows = still_open
