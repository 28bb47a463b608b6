"""Crazy Eights for 2 to 6 players, with any number of spectators.

Players arrive in a lobby with their name (the join data) and mark ready; when every seated player is
ready (two or more), or the host presses Enter, a round is dealt: 7 cards each for two players, 5 for
more. On your turn, play a card that matches the suit or the rank of the top card of the discard pile;
an 8 is wild, and you name the suit to follow. If you can't (or won't) play, draw one card from the stock:
then play it if it fits, or pass. The first to empty their hand wins the round. When the stock runs out,
the discard pile under its top card is shuffled into a new stock. Whoever joins during a round watches it
(the table, the discard pile, how many cards each player holds, whose turn it is; never a hand) and gets
a seat at the next lobby.

You see only your own hand: the others' are card backs with a count, and the server never sends anyone
else's cards (`private_attributes`: each client receives its own entry of `hands`; the stock is in a
private entry nobody receives).

Dropping out: a player whose connection is lost keeps their seat and hand for the rejoin grace period
(30 s), marked "(disconnected)"; back within it, they have the same seat and hand. The game waits for
them on their turn, but not for ever: a turn held by a disconnected player for 20 s passes on (an 8 they
played gets their commonest suit). Gone for good after the grace period, their cards are shuffled into
the stock; a round left with one player is theirs.

Controls: click a card to play it, click the stock to draw. Keys: Left / Right choose a card, Enter (or
Space) plays it, D draws, P passes, 1-4 name a suit after an 8 (spades, hearts, diamonds, clubs), R marks
you ready in the lobby, Enter starts the round if you are the host, A lets the computer play your seat
(on without a display, so `--headless` runs play), F3 shows the network statistics, Esc leaves.

    pygase-demo cards                   # play against 3 bots in this process (--bots N)
    pygase-demo cards host --name Ann   # host on the LAN; friends join with
    pygase-demo cards join HOST:8080 --name Ben

What it shows: join data (a name; a taken name is refused with `JoinRefused`), hidden information with
private attributes, dropped players returning with the same player id, and a turn-based game where the
server checks every move (the sender's id, never a player id sent in an event).
"""

from __future__ import annotations

import math
import random
import time
import zlib
from typing import Any, Optional

import pygame

from pygase import GameState, JoinRefused
from pygase_demos import DEMOS, _assets
from pygase_demos._framework import Bot, Demo, PlayerView
from pygase_demos.cards import rules

__all__ = ["DEMO", "CardsDemo", "CardsScreen", "Pacer"]

WIDTH, HEIGHT = 960, 640

BACKGROUND = (10, 32, 24)
FELT = (26, 104, 68)
FELT_DARK = (20, 84, 55)
RIM = (92, 60, 34)
TEXT = (238, 240, 232)
MUTED = (176, 200, 184)
DIM = (120, 150, 132)
GOLD = (255, 210, 90)
RED = (205, 36, 52)
BLACK = (28, 28, 38)
PAPER = (252, 251, 245)
BACK = (40, 66, 150)
BACK_LINE = (78, 108, 196)
GOOD = (120, 230, 140)
BAD = (255, 120, 110)

CARD = (78, 110)  # your hand and the piles
SMALL = (30, 42)  # the others' card backs
SUIT_KEYS = {pygame.K_1: "S", pygame.K_2: "H", pygame.K_3: "D", pygame.K_4: "C"}
for _code, _suit in ((pygame.K_KP1, "S"), (pygame.K_KP2, "H"), (pygame.K_KP3, "D"), (pygame.K_KP4, "C")):
    SUIT_KEYS[_code] = _suit


def is_red(card_or_suit: str) -> bool:
    return card_or_suit[-1] in ("H", "D")


def bold_font(size: int) -> pygame.font.Font:
    """The demos' font in bold, a font object of its own (the shared `_assets.font` ones stay regular)."""
    if not pygame.font.get_init():
        pygame.font.init()
    try:
        font = pygame.font.Font(str(_assets.FONT_FILE), size)
    except (FileNotFoundError, OSError):
        font = pygame.font.Font(None, size)
    font.set_bold(True)
    return font


class Pacer:
    """Turns `rules.choose_move` into events at a human pace: one move per change of the table, after a
    short think, sent again if nothing happened for a while (an event lost for good)."""

    def __init__(self, rng: random.Random, think: tuple = (0.5, 1.1), resend: float = 3.0) -> None:
        self.rng = rng
        self.think = think
        self.resend = resend
        self._key: Any = None
        self._due = 0.0
        self._sent_at: Optional[float] = None

    def next_move(self, state: Any, player_id: Any, now: float) -> Optional[tuple]:
        """The (event, data) to send now, or None."""
        key = (state.moves, state.phase, state.turn)
        if key != self._key:
            self._key, self._sent_at = key, None
            self._due = now + self.rng.uniform(*self.think)
        if now < self._due or (self._sent_at is not None and now - self._sent_at < self.resend):
            return None
        move = rules.choose_move(state, player_id, self.rng)
        if move is not None:
            self._sent_at = now
        return move


class CardsDemo(Demo):
    """Crazy Eights: rules on the server (see `rules`), the table in the window, bots."""

    name = "cards"
    title = "Crazy Eights"
    description = DEMOS["cards"]
    size = (WIDTH, HEIGHT)
    max_players = rules.MAX_PLAYERS
    # The library's player ids, join data and rejoining (see `pygase_demos._framework`).
    player_ids = True
    private_attributes = rules.PRIVATE
    rejoin_grace = 30.0
    think = (0.5, 1.1)  # s a bot (or autoplay) takes for a move

    def __init__(self, seed: Optional[int] = None) -> None:
        self.rng = random.Random(seed)

    # ---- server side ----
    def initial_state(self) -> GameState:
        return rules.initial_state()

    def time_step(self, game_state: GameState, dt: float) -> dict:
        return rules.step(game_state, dt, self.rng)

    def handlers(self) -> dict:
        rng = self.rng

        def on_ready(*_: Any, sender_id: Any, game_state: GameState, ready: Any = None, **__: Any) -> dict:
            return rules.set_ready(game_state, sender_id, ready)

        def on_start(*_: Any, sender_id: Any, game_state: GameState, **__: Any) -> dict:
            return rules.start(game_state, sender_id, rng)

        def on_play(*_: Any, sender_id: Any, game_state: GameState, card: Any = None, **__: Any) -> dict:
            return rules.play(game_state, sender_id, card)

        def on_draw(*_: Any, sender_id: Any, game_state: GameState, **__: Any) -> dict:
            return rules.draw(game_state, sender_id, rng)

        def on_pass(*_: Any, sender_id: Any, game_state: GameState, **__: Any) -> dict:
            return rules.pass_turn(game_state, sender_id)

        def on_suit(*_: Any, sender_id: Any, game_state: GameState, suit: Any = None, **__: Any) -> dict:
            return rules.choose_suit(game_state, sender_id, suit)

        return {
            "READY": on_ready,
            "START": on_start,
            "PLAY": on_play,
            "DRAW": on_draw,
            "PASS": on_pass,
            "SUIT": on_suit,
        }

    def player_joined(self, game_state: GameState, player_id: Any, join_data: dict) -> dict:
        """A player arrives with join data {"name": ...}: a seat, or a place among the spectators.

        Raises:
            JoinRefused: if the name is taken or the table is full
        """
        name = str(join_data.get("name") or "player").strip()[:16] or "player"
        reason = rules.check_name(game_state, name)
        if reason is not None:
            raise JoinRefused(reason)
        return rules.add_player(game_state, player_id, name, bot=name.endswith("(bot)"))

    def player_dropped(self, game_state: GameState, player_id: Any) -> dict:
        return rules.set_connected(game_state, player_id, False)

    def player_returned(self, game_state: GameState, player_id: Any) -> dict:
        return rules.set_connected(game_state, player_id, True)

    def remove_player(self, game_state: GameState, player_id: Any) -> dict:
        return rules.remove_player(game_state, player_id, self.rng)

    # ---- client side ----
    def setup_window(self, window: Any, view: PlayerView) -> None:
        CardsScreen(window, view, think=self.think)

    def bot_step(self, bot: Bot, game_state: GameState, dt: float) -> None:
        pacer = bot.memory.get("pacer")
        if pacer is None:
            pacer = bot.memory["pacer"] = Pacer(bot.rng, self.think)
        move = pacer.next_move(game_state, bot.player_id, time.monotonic())
        if move is not None:
            event, data = move
            bot.dispatch(event, retries=5, **data)


class CardsScreen:
    """The client side of one window: the table, your hand, input, and autoplay."""

    def __init__(self, window: Any, view: PlayerView, think: tuple = (0.5, 1.1)) -> None:
        self.window = window
        self.view = view
        window.background = BACKGROUND
        self.cursor = 0  # the index of the chosen card in your (sorted) hand
        self.hover: Optional[int] = None
        self.flash: tuple = ("", 0.0)  # a message of this window's own ("you can't play that"), until
        # Without a display nobody can press a key: the computer plays this seat, so a headless run plays.
        self.autoplay = pygame.display.get_driver() in ("dummy", "offscreen")
        self.pacer = Pacer(random.Random(), think)
        self.fonts = {size: _assets.font(size) for size in (13, 15, 17, 20, 24, 30, 44)}
        self.rank_font = bold_font(19)
        self._text_cache: dict = {}
        self._faces: dict = {}
        self._backs: dict = {}
        self._rotated: dict = {}
        self._table: Optional[pygame.Surface] = None
        # Hit boxes of the last frame, for the mouse: (rect, card) in drawing order, and the buttons.
        self.card_boxes: list = []
        self.buttons: list = []
        self.stock_box: Optional[pygame.Rect] = None
        self.state: Any = None
        window.hook(self.update)
        window.hook(self.draw)
        window.hook(self.on_key_down)
        window.hook(self.on_mouse_down)
        window.hook(self.on_mouse_move)

    # ---- what this window's player sees -------------------------------------------------------------

    @property
    def me(self) -> Any:
        return self.view.player_id

    def my_hand(self, state: Any) -> list:
        """Your hand, sorted for showing: by suit (colours alternating), then rank; the drawn card last."""
        hand = rules.hand_of(state, self.me)
        drawn = hand[-1] if state.drew and state.turn == self.me and hand else None
        order = {suit: index for index, suit in enumerate(("S", "H", "C", "D"))}
        ranks = {rank: index for index, rank in enumerate(rules.RANKS)}
        rest = list(hand)
        if drawn is not None:
            rest.remove(drawn)
        rest.sort(key=lambda card: (order[rules.suit_of(card)], ranks[rules.rank_of(card)]))
        return rest + ([drawn] if drawn is not None else [])

    def status(self, state: Any) -> tuple:
        """The status line: (text, colour)."""
        me, players = self.me, state.players
        entry = players.get(me) if me is not None else None
        if state.phase == "lobby":
            seated = rules.seat_order(state)
            ready = sum(1 for pid in seated if players[pid].get("ready"))
            if entry is None:
                return "joining...", MUTED
            if not entry.get("seated"):
                return "the table is full: you are watching", MUTED
            if len(seated) < rules.MIN_PLAYERS:
                return "waiting for another player...", MUTED
            if not entry.get("ready"):
                return f"press R when you are ready ({ready}/{len(seated)} ready)", GOLD
            if state.host == me:
                return f"{ready}/{len(seated)} ready - Enter starts the round now", GOLD
            return f"{ready}/{len(seated)} ready - waiting for the others", MUTED
        if state.phase == "over":
            seconds = max(1, math.ceil(float(state.timer)))
            return f"round over - back to the table in {seconds} s", MUTED
        turn = players.get(state.turn, {})
        if me not in state.order:
            return f"{turn.get('name', '?')}'s turn - you are watching this round", MUTED
        if state.turn != me:
            away = " (disconnected)" if not turn.get("connected", True) else ""
            if state.choosing:
                return f"{turn.get('name', '?')}{away} is choosing a suit", TEXT
            return f"{turn.get('name', '?')}'s turn{away}", TEXT
        if state.choosing:
            return "choose a suit: 1 \u2660  2 \u2665  3 \u2666  4 \u2663", GOLD
        if state.drew:
            if rules.legal_cards(state, me):
                return "your turn: play the card you drew, or pass (P)", GOLD
            return "your turn: the card you drew does not fit - pass (P)", GOLD
        if rules.legal_cards(state, me):
            return "your turn: play a card, or draw (D)", GOLD
        if rules.can_draw(state, me):
            return "your turn: nothing fits - draw a card (D)", GOLD
        return "your turn: nothing to play or draw - pass (P)", GOLD

    # ---- input --------------------------------------------------------------------------------------

    def send(self, event: str, **data: Any) -> None:
        self.window.dispatch(event, retries=5, **data)

    def say(self, message: str, seconds: float = 2.5) -> None:
        self.flash = (message, time.monotonic() + seconds)

    def try_play(self, state: Any, card: str) -> None:
        if state.phase != "play" or state.turn != self.me:
            self.say("wait for your turn")
        elif state.choosing:
            self.say("name a suit first: keys 1-4")
        elif card in rules.legal_cards(state, self.me):
            self.send("PLAY", card=card)
        elif state.drew:
            self.say("after drawing, only the drawn card may be played (or pass: P)")
        else:
            top = state.discard[-1]
            follow = rules.SUIT_SYMBOLS[state.suit]
            self.say(f"{rules.card_label(card)} does not fit: play {follow}, a {rules.rank_of(top)} or an 8")

    def try_draw(self, state: Any) -> None:
        if rules.can_draw(state, self.me):
            self.send("DRAW")
        elif state.phase == "play" and state.turn == self.me and state.drew:
            self.say("one card per turn: play it or pass (P)")

    def try_pass(self, state: Any) -> None:
        if rules.can_pass(state, self.me):
            self.send("PASS")
        elif state.phase == "play" and state.turn == self.me and not state.choosing:
            self.say("draw a card first (D)")

    def on_key_down(self, key: int) -> None:
        state = self.state
        if key == pygame.K_ESCAPE:
            self.window.running = False
            return
        if key == pygame.K_a:
            self.autoplay = not self.autoplay
            self.say("the computer plays for you (A: stop)" if self.autoplay else "you play again")
            return
        if state is None or self.me is None:
            return
        hand = self.my_hand(state)
        if key in (pygame.K_LEFT, pygame.K_RIGHT) and hand:
            step = -1 if key == pygame.K_LEFT else 1
            self.cursor = (min(self.cursor, len(hand) - 1) + step) % len(hand)
            self.hover = None
        elif key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_SPACE):
            if state.phase == "lobby":
                if state.host == self.me:
                    self.send("START")
                else:
                    self.send("READY", ready=True)
            elif hand:
                self.try_play(state, hand[min(self.cursor, len(hand) - 1)])
        elif key == pygame.K_r:
            self.send("READY")
        elif key == pygame.K_s and state.phase == "lobby" and state.host == self.me:
            self.send("START")
        elif key == pygame.K_d:
            self.try_draw(state)
        elif key == pygame.K_p:
            self.try_pass(state)
        elif key in SUIT_KEYS and state.choosing and state.turn == self.me:
            self.send("SUIT", suit=SUIT_KEYS[key])

    def card_at(self, pos: tuple) -> Optional[int]:
        """The index of your card under `pos` (the topmost), or None."""
        for index, (rect, _card) in reversed(list(enumerate(self.card_boxes))):
            if rect.collidepoint(pos):
                return index
        return None

    def on_mouse_move(self, pos: tuple) -> None:
        index = self.card_at(pos)
        if index is not None:
            self.cursor = index
        self.hover = index

    def on_mouse_down(self, pos: tuple, button: int) -> None:
        state = self.state
        if button != 1 or state is None or self.me is None:
            return
        for rect, action in self.buttons:
            if rect.collidepoint(pos):
                event, data = action
                self.send(event, **data)
                return
        index = self.card_at(pos)
        if index is not None:
            self.cursor = index
            self.try_play(state, self.card_boxes[index][1])
        elif self.stock_box is not None and self.stock_box.collidepoint(pos):
            self.try_draw(state)

    def update(self, state: Any) -> None:
        self.state = state
        if state is None or self.me is None:
            return
        hand = rules.hand_of(state, self.me)
        self.cursor = max(0, min(self.cursor, len(hand) - 1))
        if self.autoplay:
            move = self.pacer.next_move(state, self.me, time.monotonic())
            if move is not None:
                event, data = move
                self.send(event, **data)

    # ---- drawing helpers ----------------------------------------------------------------------------

    def text(self, size: int, message: str, colour: tuple) -> pygame.Surface:
        key = (size, message, tuple(colour))
        surface = self._text_cache.get(key)
        if surface is None:
            if len(self._text_cache) > 400:
                self._text_cache.clear()
            surface = self._text_cache[key] = self.fonts[size].render(message, True, colour)
        return surface

    def face(self, card: str, size: tuple = CARD) -> pygame.Surface:
        """A card's face: rank and suit in two corners, a big suit (or the rank of a court card) in the
        middle; an 8 has a golden frame and says "wild"."""
        key = (card, size)
        surface = self._faces.get(key)
        if surface is not None:
            return surface
        width, height = size
        rank, suit = rules.rank_of(card), rules.suit_of(card)
        colour = RED if is_red(suit) else BLACK
        symbol = rules.SUIT_SYMBOLS[suit]
        surface = pygame.Surface(size, pygame.SRCALPHA)
        rect = surface.get_rect()
        pygame.draw.rect(surface, PAPER, rect, border_radius=8)
        wild = rank == "8"
        if wild:
            pygame.draw.rect(surface, GOLD, rect.inflate(-6, -6), width=3, border_radius=6)
        pygame.draw.rect(surface, (70, 70, 80), rect, width=1, border_radius=8)
        centre = (width // 2, height // 2)
        if rank in ("J", "Q", "K"):
            inner = pygame.Rect(0, 0, width - 40, height - 50)
            inner.center = centre
            pygame.draw.rect(surface, (250, 236, 200), inner, border_radius=4)
            pygame.draw.rect(surface, colour, inner, width=1, border_radius=4)
            big = self.fonts[30].render(rank, True, colour)
            surface.blit(big, big.get_rect(center=(centre[0], centre[1] - 9)))
            mini = self.fonts[17].render(symbol, True, colour)
            surface.blit(mini, mini.get_rect(center=(centre[0], centre[1] + 17)))
        else:
            big = self.fonts[44].render(symbol, True, colour)
            surface.blit(big, big.get_rect(center=(centre[0], centre[1] - (6 if wild else 0))))
            if wild:
                tag = self.fonts[13].render("WILD", True, (170, 120, 10))
                surface.blit(tag, tag.get_rect(center=(centre[0], centre[1] + 24)))
        corner = pygame.Surface((26, 42), pygame.SRCALPHA)
        label = self.rank_font.render(rank, True, colour)
        small = self.fonts[15].render(symbol, True, colour)
        corner.blit(label, label.get_rect(midtop=(13, 0)))
        corner.blit(small, small.get_rect(midtop=(13, label.get_height() - 3)))
        surface.blit(corner, (4, 4))
        surface.blit(pygame.transform.rotate(corner, 180), (width - 30, height - 46))
        self._faces[key] = surface
        return surface

    def back(self, size: tuple = CARD) -> pygame.Surface:
        """A card's back: a blue lattice in a white frame."""
        surface = self._backs.get(size)
        if surface is not None:
            return surface
        width, height = size
        surface = pygame.Surface(size, pygame.SRCALPHA)
        rect = surface.get_rect()
        radius = max(3, min(8, width // 8))
        pygame.draw.rect(surface, PAPER, rect, border_radius=radius)
        inner = rect.inflate(-max(4, width // 10), -max(4, width // 10))
        pattern = pygame.Surface(inner.size, pygame.SRCALPHA)
        pattern.fill(BACK)
        step = max(6, width // 7)
        for offset in range(-inner.height, inner.width + inner.height, step):
            pygame.draw.line(pattern, BACK_LINE, (offset, 0), (offset + inner.height, inner.height), 1)
            pygame.draw.line(pattern, BACK_LINE, (offset, inner.height), (offset + inner.height, 0), 1)
        mask = pygame.Surface(inner.size, pygame.SRCALPHA)
        pygame.draw.rect(mask, (255, 255, 255, 255), mask.get_rect(), border_radius=max(2, radius - 2))
        pattern.blit(mask, (0, 0), special_flags=pygame.BLEND_RGBA_MIN)
        surface.blit(pattern, inner)
        if width >= 60:
            pygame.draw.circle(surface, PAPER, inner.center, width // 5)
            pygame.draw.circle(surface, BACK, inner.center, width // 5 - 3)
            eight = self.fonts[20].render("8", True, PAPER)
            surface.blit(eight, eight.get_rect(center=inner.center))
        pygame.draw.rect(surface, (70, 70, 80), rect, width=1, border_radius=radius)
        self._backs[size] = surface
        return surface

    def rotated(self, card: str, angle: float) -> pygame.Surface:
        key = (card, round(angle))
        surface = self._rotated.get(key)
        if surface is None:
            if len(self._rotated) > 120:
                self._rotated.clear()
            surface = self._rotated[key] = pygame.transform.rotozoom(self.face(card), round(angle), 1.0)
        return surface

    def shadow(self, screen: Any, rect: pygame.Rect, offset: int = 3, alpha: int = 90) -> None:
        shade = pygame.Surface(rect.size, pygame.SRCALPHA)
        pygame.draw.rect(shade, (0, 0, 0, alpha), shade.get_rect(), border_radius=8)
        screen.blit(shade, rect.move(offset, offset))

    def table(self, size: tuple) -> pygame.Surface:
        """The felt table on its wooden rim (drawn once)."""
        if self._table is not None and self._table.get_size() == size:
            return self._table
        width, height = size
        surface = pygame.Surface(size)
        surface.fill(BACKGROUND)
        oval = pygame.Rect(30, 40, width - 60, height - 150)
        pygame.draw.ellipse(surface, (6, 20, 14), oval.inflate(30, 30).move(0, 8))
        pygame.draw.ellipse(surface, RIM, oval.inflate(26, 26))
        pygame.draw.ellipse(surface, (120, 82, 48), oval.inflate(26, 26), width=3)
        for index in range(10):  # the felt lighter towards the middle
            shrink = index * 26
            tone = tuple(round(a + (b - a) * index / 9) for a, b in zip(FELT_DARK, FELT))
            pygame.draw.ellipse(surface, tone, oval.inflate(-shrink * 2, -shrink))
        self._table = surface
        return surface

    def plate(
        self, screen: Any, centre: tuple, lines: list, highlight: Optional[tuple] = None
    ) -> pygame.Rect:
        """Text lines on a dark rounded plate centred at `centre`; a coloured frame if highlighted."""
        surfaces = [self.text(size, message, colour) for size, message, colour in lines]
        width = max(surface.get_width() for surface in surfaces) + 20
        height = sum(surface.get_height() for surface in surfaces) + 10
        rect = pygame.Rect(0, 0, width, height)
        rect.center = (round(centre[0]), round(centre[1]))
        backdrop = pygame.Surface(rect.size, pygame.SRCALPHA)
        pygame.draw.rect(backdrop, (0, 0, 0, 150), backdrop.get_rect(), border_radius=8)
        screen.blit(backdrop, rect)
        if highlight is not None:
            pygame.draw.rect(screen, highlight, rect.inflate(4, 4), width=2, border_radius=10)
        y = rect.top + 5
        for surface in surfaces:
            screen.blit(surface, surface.get_rect(midtop=(rect.centerx, y)))
            y += surface.get_height()
        return rect

    def button(self, screen: Any, centre: tuple, label: str, action: tuple, colour: tuple = GOLD) -> None:
        surface = self.text(17, label, BLACK)
        rect = surface.get_rect(center=centre).inflate(26, 12)
        pygame.draw.rect(screen, colour, rect, border_radius=8)
        pygame.draw.rect(screen, (40, 30, 10), rect, width=1, border_radius=8)
        screen.blit(surface, surface.get_rect(center=rect.center))
        self.buttons.append((rect, action))

    # ---- drawing ------------------------------------------------------------------------------------

    def draw(self, screen: Any, state: Any) -> None:
        self.state = state
        self.buttons = []
        self.card_boxes = []
        self.stock_box = None
        width, height = screen.get_size()
        screen.blit(self.table((width, height)), (0, 0))
        self.draw_seats(screen, state, width, height)
        if state.phase == "lobby":
            self.draw_lobby(screen, state, width, height)
        elif state.phase == "play":
            self.draw_piles(screen, state, width, height)
        self.draw_hand(screen, state, width, height)
        self.draw_status(screen, state, width, height)
        if state.phase == "over":
            self.draw_winner(screen, state, width, height)
        self.draw_footer(screen, state, width, height)

    def others(self, state: Any) -> list:
        """Everyone at the table but you, in seating order starting after you (so the seats go round)."""
        seated = list(state.order) if state.phase != "lobby" else rules.seat_order(state)
        if state.phase != "lobby":  # seated players sitting this round out are shown too, after them
            seated += [pid for pid in rules.seat_order(state) if pid not in seated]
        if self.me in seated:
            index = seated.index(self.me)
            seated = seated[index + 1 :] + seated[:index]
        return [pid for pid in seated if pid != self.me and pid in state.players]

    def seat_positions(self, count: int, width: int, height: int) -> list:
        """Where the others sit: on an arc over the top of the table, left to right."""
        if count == 0:
            return []
        cx, cy = width / 2, 300
        if count == 1:
            angles = [270.0]
        else:
            spread = min(150.0, 44.0 * (count - 1))
            angles = [270 - spread / 2 + spread * index / (count - 1) for index in range(count)]
        return [
            (cx + math.cos(math.radians(a)) * (width / 2 - 110), cy + math.sin(math.radians(a)) * 215)
            for a in angles
        ]

    def draw_seats(self, screen: Any, state: Any, width: int, height: int) -> None:
        others = self.others(state)
        now = time.monotonic()
        for pid, (x, y) in zip(others, self.seat_positions(len(others), width, height)):
            entry = state.players[pid]
            count = int(entry.get("cards", 0))
            in_round = state.phase != "lobby" and pid in state.order
            if in_round and count:
                self.draw_fan(screen, (x, y + 34), count)
            lines = [(17, entry["name"] + ("  \u2605" * min(3, int(entry.get("wins", 0)))), TEXT)]
            detail, colour = self.seat_detail(state, pid, entry, in_round)
            if detail:
                lines.append((13, detail, colour))
            highlight = None
            if state.phase == "play" and state.turn == pid:
                pulse = 0.6 + 0.4 * math.sin(now * 5)
                highlight = tuple(round(c * pulse) for c in GOLD)
            elif state.phase == "over" and state.winner == pid:
                highlight = GOLD
            self.plate(screen, (x, y - 14), lines, highlight)

    def seat_detail(self, state: Any, pid: Any, entry: dict, in_round: bool) -> tuple:
        if not entry.get("connected", True):
            if state.turn == pid and state.phase == "play":
                left = max(0, math.ceil(rules.SKIP_AFTER - float(state.idle)))
                return f"(disconnected) - skipped in {left} s", BAD
            return "(disconnected)", BAD
        if state.phase == "lobby":
            if state.host == pid and not entry.get("ready"):
                return "host - not ready", DIM
            return ("ready \u2713", GOOD) if entry.get("ready") else ("not ready", DIM)
        if not in_round:
            return "sitting this round out", DIM
        count = int(entry.get("cards", 0))
        if state.phase == "play" and state.turn == pid:
            return ("naming a suit..." if state.choosing else "thinking..."), GOLD
        return f"{count} card" + ("" if count == 1 else "s"), MUTED

    def draw_fan(self, screen: Any, centre: tuple, count: int) -> None:
        """`count` card backs, fanned (at most 12 drawn), with the count on a badge."""
        shown = min(count, 12)
        back = self.back(SMALL)
        spread = 7.0 if shown > 1 else 0.0
        for index in range(shown):
            angle = (index - (shown - 1) / 2) * spread
            sprite = pygame.transform.rotate(back, -angle)
            x = centre[0] + (index - (shown - 1) / 2) * 9
            y = centre[1] + abs(index - (shown - 1) / 2) * 1.5
            screen.blit(sprite, sprite.get_rect(center=(round(x), round(y))))
        badge = self.text(13, str(count), BLACK)
        spot = (round(centre[0] + shown * 4.5 + 18), round(centre[1] + 14))
        pygame.draw.circle(screen, GOLD, spot, 11)
        screen.blit(badge, badge.get_rect(center=spot))

    def draw_piles(self, screen: Any, state: Any, width: int, height: int) -> None:
        cx, cy = width // 2, 292
        # The stock: a stack of backs, thicker the more it holds.
        stock = pygame.Rect(0, 0, *CARD)
        stock.center = (cx - 75, cy)
        layers = min(6, (int(state.stock_count) + 7) // 8)
        for index in range(layers):
            rect = stock.move(-index, -index)
            if index == 0:
                self.shadow(screen, rect)
            screen.blit(self.back(), rect)
        if layers:
            top = stock.move(-(layers - 1), -(layers - 1))
            self.stock_box = top
            if rules.can_draw(state, self.me):
                pygame.draw.rect(screen, GOLD, top.inflate(6, 6), width=2, border_radius=10)
        else:
            pygame.draw.rect(screen, FELT_DARK, stock, border_radius=8)
            pygame.draw.rect(screen, DIM, stock, width=1, border_radius=8)
        label = f"stock {state.stock_count}" if state.stock_count else "stock empty"
        caption = self.text(13, label, MUTED)
        screen.blit(caption, caption.get_rect(midtop=(stock.centerx, stock.bottom + 6)))
        # The discard pile: the last few cards, each at its own slight angle, the top one straight.
        discard = list(state.discard)
        centre = (cx + 45, cy)
        for card in discard[-4:-1]:
            angle = (zlib.crc32(card.encode()) % 31) - 15
            sprite = self.rotated(card, angle)
            screen.blit(sprite, sprite.get_rect(center=centre))
        if discard:
            rect = pygame.Rect(0, 0, *CARD)
            rect.center = centre
            self.shadow(screen, rect)
            screen.blit(self.face(discard[-1]), rect)
        caption = self.text(13, f"discard {len(discard)}", MUTED)
        screen.blit(caption, caption.get_rect(midtop=(centre[0], centre[1] + CARD[1] // 2 + 6)))
        # The suit to follow, large when an 8 named it.
        if state.suit and not state.choosing:
            named = bool(discard) and rules.rank_of(discard[-1]) == "8"  # the suit an 8 was given
            spot = (cx + 150, cy - 8)
            pygame.draw.circle(screen, PAPER, spot, 27)
            pygame.draw.circle(screen, GOLD if named else (90, 90, 100), spot, 27, width=3)
            symbol = self.text(30, rules.SUIT_SYMBOLS[state.suit], RED if is_red(state.suit) else BLACK)
            screen.blit(symbol, symbol.get_rect(center=spot))
            words = f"{rules.SUIT_NAMES[state.suit]} named" if named else "follow suit"
            caption = self.text(13, words, GOLD if named else MUTED)
            screen.blit(caption, caption.get_rect(midtop=(spot[0], spot[1] + 32)))
        if state.last:
            line = self.text(15, state.last, TEXT)
            screen.blit(line, line.get_rect(center=(cx, cy + 96)))
        if state.phase == "play" and state.turn == self.me:
            if state.choosing:
                self.draw_suit_choice(screen, cx, cy)
            elif rules.can_pass(state, self.me):
                self.button(screen, (cx - 75, cy - 80), "Pass (P)", ("PASS", {}))
            elif rules.can_draw(state, self.me):
                hint = self.text(13, "click to draw (D)", GOLD)
                screen.blit(hint, hint.get_rect(midbottom=(cx - 75, cy - CARD[1] // 2 - 10)))

    def draw_suit_choice(self, screen: Any, cx: int, cy: int) -> None:
        """Four suit buttons over the piles (also keys 1-4)."""
        panel = pygame.Rect(0, 0, 380, 124)
        panel.center = (cx, cy)
        backdrop = pygame.Surface(panel.size, pygame.SRCALPHA)
        pygame.draw.rect(backdrop, (8, 24, 18, 248), backdrop.get_rect(), border_radius=12)
        screen.blit(backdrop, panel)
        pygame.draw.rect(screen, GOLD, panel, width=2, border_radius=12)
        title = self.text(17, "name the suit to follow", GOLD)
        screen.blit(title, title.get_rect(midtop=(cx, panel.top + 8)))
        for index, suit in enumerate(rules.SUITS):
            rect = pygame.Rect(0, 0, 64, 62)
            rect.center = (round(cx + (index - 1.5) * 76), cy + 14)
            pygame.draw.rect(screen, PAPER, rect, border_radius=8)
            symbol = self.text(30, rules.SUIT_SYMBOLS[suit], RED if is_red(suit) else BLACK)
            screen.blit(symbol, symbol.get_rect(center=(rect.centerx, rect.centery - 6)))
            key = self.text(13, str(index + 1), (90, 90, 100))
            screen.blit(key, key.get_rect(midbottom=(rect.centerx, rect.bottom - 2)))
            self.buttons.append((rect, ("SUIT", {"suit": suit})))

    def draw_hand(self, screen: Any, state: Any, width: int, height: int) -> None:
        me = self.me
        entry = state.players.get(me) if me is not None else None
        hand = self.my_hand(state)
        if entry is None:
            return
        name = entry["name"] + "  (you)" + ("  \u2605" * min(3, int(entry.get("wins", 0))))
        lines = [(17, name, TEXT)]
        if not entry.get("seated"):
            lines.append((13, "watching", DIM))
        highlight = GOLD if state.phase == "play" and state.turn == me else None
        self.plate(screen, (width // 2, height - 166), lines, highlight)
        if not hand:
            return
        legal = set(rules.legal_cards(state, me))
        my_turn = state.phase == "play" and state.turn == me and not state.choosing
        card_w, card_h = CARD
        room = width - 80
        gap = min(card_w + 8.0, (room - card_w) / max(1, len(hand) - 1))
        left = (width - (gap * (len(hand) - 1) + card_w)) / 2
        base = height - card_h - 28
        cursor = min(self.cursor, len(hand) - 1)
        drawn = hand[-1] if state.drew and my_turn else None
        for index, card in enumerate(hand):
            rect = pygame.Rect(round(left + index * gap), base, card_w, card_h)
            fits = card in legal
            chosen = index == cursor and (my_turn or self.hover == index)
            if my_turn and fits:
                rect.y -= 16
            if chosen:
                rect.y -= 8
            self.shadow(screen, rect)
            screen.blit(self.face(card), rect)
            if my_turn and not fits:
                veil = pygame.Surface(rect.size, pygame.SRCALPHA)
                pygame.draw.rect(veil, (0, 0, 0, 90), veil.get_rect(), border_radius=8)
                screen.blit(veil, rect)
            if chosen:
                pygame.draw.rect(screen, GOLD if fits or not my_turn else BAD, rect.inflate(6, 6), 3, 10)
            if card == drawn:
                tag = self.text(13, "drawn", BLACK)
                spot = tag.get_rect(midbottom=(rect.centerx, rect.top - 3)).inflate(10, 4)
                pygame.draw.rect(screen, GOLD, spot, border_radius=6)
                screen.blit(tag, tag.get_rect(center=spot.center))
            self.card_boxes.append((rect, card))

    def draw_status(self, screen: Any, state: Any, width: int, height: int) -> None:
        message, colour = self.status(state)
        flash, until = self.flash
        lines = [(20, message, colour)]
        if flash and time.monotonic() < until:
            lines.append((15, flash, BAD))
        self.plate(screen, (width // 2, height - 206 if state.phase != "lobby" else height - 214), lines)

    def draw_lobby(self, screen: Any, state: Any, width: int, height: int) -> None:
        cx, cy = width // 2, 280
        title = self.text(44, "Crazy Eights", GOLD)
        screen.blit(title, title.get_rect(center=(cx, cy - 40)))
        seated = rules.seat_order(state)
        ready = sum(1 for pid in seated if state.players[pid].get("ready"))
        lines = [
            f"{len(seated)} of {rules.MAX_SEATS} seats taken, {ready} ready",
            "match the suit or the rank of the top card - 8s are wild",
            f"{rules.hand_size(max(2, len(seated)))} cards each - the first to play all of theirs wins",
        ]
        for index, line in enumerate(lines):
            surface = self.text(15, line, TEXT if index == 0 else MUTED)
            screen.blit(surface, surface.get_rect(center=(cx, cy + 6 + index * 22)))
        entry = state.players.get(self.me) if self.me is not None else None
        if entry is not None and entry.get("seated"):
            if not entry.get("ready"):
                self.button(
                    screen,
                    (cx - (70 if state.host == self.me else 0), cy + 90),
                    "Ready (R)",
                    ("READY", {"ready": True}),
                )
            else:
                self.button(
                    screen,
                    (cx - (70 if state.host == self.me else 0), cy + 90),
                    "Not ready (R)",
                    ("READY", {"ready": False}),
                    colour=MUTED,
                )
            if state.host == self.me and len(rules.seat_order(state, True)) >= rules.MIN_PLAYERS:
                self.button(screen, (cx + 80, cy + 90), "Start (Enter)", ("START", {}), colour=GOOD)

    def draw_winner(self, screen: Any, state: Any, width: int, height: int) -> None:
        cx, cy = width // 2, 292
        name = "You win!" if state.winner == self.me else f"{state.winner_name} wins!"
        lines = [(44, name, GOLD), (15, state.last, TEXT)]
        surfaces = [self.text(size, message, colour) for size, message, colour in lines]
        rect = pygame.Rect(0, 0, max(surface.get_width() for surface in surfaces) + 60, 112)
        rect.center = (cx, cy)
        pygame.draw.rect(screen, (8, 24, 18), rect, border_radius=14)
        pygame.draw.rect(screen, GOLD, rect, width=2, border_radius=14)
        screen.blit(surfaces[0], surfaces[0].get_rect(midtop=(cx, rect.top + 14)))
        screen.blit(surfaces[1], surfaces[1].get_rect(midtop=(cx, rect.top + 74)))
        now = time.monotonic()
        for index in range(12):  # suits circling the winner
            angle = index / 12 * math.tau + now * 0.6
            suit = rules.SUITS[index % 4]
            x = rect.centerx + math.cos(angle) * (rect.width / 2 + 34)
            y = rect.centery + math.sin(angle) * (rect.height / 2 + 30)
            symbol = self.text(24, rules.SUIT_SYMBOLS[suit], (255, 120, 130) if is_red(suit) else PAPER)
            screen.blit(symbol, symbol.get_rect(center=(round(x), round(y))))

    def draw_footer(self, screen: Any, state: Any, width: int, height: int) -> None:
        watching = [
            entry["name"]
            for pid, entry in state.players.items()
            if not entry.get("seated") and pid != self.me
        ]
        if watching:
            shown = ", ".join(watching[:5]) + (f" and {len(watching) - 5} more" if len(watching) > 5 else "")
            line = self.text(13, f"watching: {shown}", DIM)
            screen.blit(line, (12, height - 20))
        entry = state.players.get(self.me) if self.me is not None else None
        playing = self.me in state.order or state.phase == "lobby"
        if entry is None or not entry.get("seated") or not playing:
            hint = "you are watching: you get a seat at the next lobby  -  F3 network  -  Esc leave"
        elif state.phase == "lobby":
            hint = "R ready  -  Enter start (host)  -  A autoplay  -  Esc leave"
        else:
            hint = "\u2190 \u2192 choose  -  Enter play  -  D draw  -  P pass  -  1-4 suit  -  A autoplay"
        if self.autoplay:
            hint = "autoplay is on (A: off)  -  " + hint.split("  -  A autoplay")[0]
        line = self.text(13, hint, GOLD if self.autoplay else DIM)
        screen.blit(line, line.get_rect(bottomright=(width - 12, height - 6)))


DEMO = CardsDemo()
