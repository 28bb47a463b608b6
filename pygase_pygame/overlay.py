"""The network statistics overlay: RTT, update rate, loss, bandwidth, interpolation delay, quality."""

from __future__ import annotations

from typing import Optional

import pygame

from pygase.netstats import ConnectionStatistics

__all__ = ["NetStatsOverlay", "format_statistics"]


def format_statistics(stats: ConnectionStatistics, interpolation_delay: Optional[float] = None) -> list:
    """Return the overlay's lines of text for `stats`."""
    lines = [
        f"{stats.status}  quality {stats.quality}" + ("  via relay" if stats.route == "relay" else ""),
        f"RTT {stats.rtt * 1000:.0f} ms",
        f"updates {stats.update_rate:.1f}/s",
        f"loss in {stats.loss_in * 100:.1f}%  out {stats.loss_out * 100:.1f}%",
        f"kbps in {stats.kbps_in:.1f}  out {stats.kbps_out:.1f}",
    ]
    if interpolation_delay is not None:
        lines.append(f"interpolation {interpolation_delay * 1000:.0f} ms")
    return lines


class NetStatsOverlay:
    """Draws network statistics in a corner of the screen; the text is refreshed a few times a second.

    Arguments:
        refresh: seconds between two renderings of the text
        font_size: size of the default pygame font
    """

    def __init__(self, refresh: float = 0.25, font_size: int = 20) -> None:
        self.refresh = refresh
        self.font_size = font_size
        self.lines: list[str] = []
        self._font: Optional[pygame.font.Font] = None
        self._surface: Optional[pygame.Surface] = None
        self._rendered_at = float("-inf")

    def due(self, now: float) -> bool:
        """Whether the text should be rendered again (so the figures need not be gathered every frame)."""
        return self._surface is None or now - self._rendered_at >= self.refresh

    def update(self, stats: ConnectionStatistics, interpolation_delay: Optional[float], now: float) -> None:
        """Take new figures; the text is rendered again only every `refresh` seconds."""
        if not self.due(now):
            return
        self._rendered_at = now
        self.lines = format_statistics(stats, interpolation_delay)
        if self._font is None:
            if not pygame.font.get_init():
                pygame.font.init()
            self._font = pygame.font.Font(None, self.font_size)
        rendered = [self._font.render(line, True, (235, 235, 235)) for line in self.lines]
        width = max(r.get_width() for r in rendered) + 12
        height = sum(r.get_height() for r in rendered) + 10
        surface = pygame.Surface((width, height), pygame.SRCALPHA)
        surface.fill((0, 0, 0, 170))
        y = 5
        for line in rendered:
            surface.blit(line, (6, y))
            y += line.get_height()
        self._surface = surface

    def draw(self, target: pygame.Surface) -> None:
        """Blit the overlay into the top right corner of `target`."""
        if self._surface is not None:
            target.blit(self._surface, (target.get_width() - self._surface.get_width() - 8, 8))
