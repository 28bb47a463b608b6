"""The rules of Crazy Eights, as plain functions of the game state (no pygame, no network, no clock).

Everything the server decides lives here: who sits at the table and who watches, the lobby (ready flags,
the host's start), dealing, whose turn it is, what may be played, drawing with the discard pile shuffled
back into the stock, an 8 and the suit its player names, a player who drops and comes back, and the
winner. Each function returns the changes to deep-merge into the state, like a PyGaSe handler, and
changes nothing when the move is not allowed (a client's event is never trusted: the player is the
sender's id, and every card, suit and turn is checked here). `choose_move` is the bots' (and autoplay's)
strategy: a legal move from what a player can see.

Cards are strings: rank then suit, "8H", "10S", "QC" (suits S H D C: spades, hearts, diamonds, clubs).

The state:

    phase     "lobby" (seated players mark ready), "play" (a round), "over" (the winner is shown for
              `timer` seconds, then the lobby again)
    players   {id: {name, seated (True: at the table; False: watching), ready, connected, bot,
              since (arrival ticket: seating order), cards (how many in hand), wins}}
    host      the id who may start a round without everyone ready (the first to arrive; passed on)
    order     the ids in this round, in seating order (turns go round it)
    turn      whose turn it is (an id, or None outside a round)
    discard   the discard pile, top card last (public: everyone saw those cards played)
    suit      the suit to follow: the top card's, or the suit named after an 8
    stock_count  cards in the stock (the stock itself is private, see below)
    drew      the player whose turn it is has drawn: they may play the drawn card (the last in their
              hand) or pass
    choosing  the player whose turn it is played an 8 and must name a suit
    idle      seconds the current player has been disconnected on this turn (skipped at SKIP_AFTER)
    passes    turns in a row passed with nothing left to draw (a round nobody can finish ends)
    winner, winner_name, last (what just happened, for the status line), moves (counts every change of
    the table: bots act once per move), rounds, ticket

Private (`Backend(private_attributes=PRIVATE)`: each player receives only their own entry):

    hands     {id: [cards]}
    deck      {STOCK: [cards]}: the stock, top card last, under a key no player ever has, so no client
              ever receives it
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, Optional

from pygase import TO_DELETE, GameState
from pygase_demos._updates import merge

__all__ = [
    "SUITS",
    "RANKS",
    "SUIT_NAMES",
    "SUIT_SYMBOLS",
    "MAX_SEATS",
    "MIN_PLAYERS",
    "MAX_PLAYERS",
    "SKIP_AFTER",
    "OVER_PAUSE",
    "PRIVATE",
    "STOCK",
    "rank_of",
    "suit_of",
    "card_label",
    "new_deck",
    "hand_size",
    "initial_state",
    "check_name",
    "add_player",
    "remove_player",
    "set_connected",
    "set_ready",
    "start",
    "start_round",
    "can_start",
    "is_legal",
    "legal_cards",
    "can_draw",
    "can_pass",
    "play",
    "draw",
    "pass_turn",
    "choose_suit",
    "step",
    "choose_move",
    "seat_order",
    "hand_of",
]

SUITS = ("S", "H", "D", "C")  # the keys 1-4 name them in this order
RANKS = ("A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K")
SUIT_NAMES = {"S": "spades", "H": "hearts", "D": "diamonds", "C": "clubs"}
SUIT_SYMBOLS = {"S": "\u2660", "H": "\u2665", "D": "\u2666", "C": "\u2663"}
WILD = "8"

MIN_PLAYERS = 2
MAX_SEATS = 6
MAX_PLAYERS = 14  # seats and spectators together
SKIP_AFTER = 20.0  # s a disconnected player may hold the turn before it passes
OVER_PAUSE = 6.0  # s the winner is shown before the lobby
PRIVATE = ("hands", "deck")
STOCK = -1  # the key of the stock in `deck`: player ids are never negative


# ---- cards -------------------------------------------------------------------------------------------


def rank_of(card: str) -> str:
    return card[:-1]


def suit_of(card: str) -> str:
    return card[-1]


def card_label(card: str) -> str:
    """A card as people write it: "8♥", "10♠"."""
    return rank_of(card) + SUIT_SYMBOLS.get(suit_of(card), "?")


def new_deck(rng: random.Random) -> list:
    deck = [rank + suit for suit in SUITS for rank in RANKS]
    rng.shuffle(deck)
    return deck


def hand_size(player_count: int) -> int:
    """Cards dealt to each player: 7 for two players, 5 for more."""
    return 7 if player_count == 2 else 5


# ---- small helpers -----------------------------------------------------------------------------------


def _name(state: Any, pid: Any) -> str:
    entry = state.players.get(pid)
    return str(entry["name"]) if isinstance(entry, dict) else "someone"


def hand_of(state: Any, pid: Any) -> list:
    """`pid`'s hand as a plain list (empty if the state holds none for them: on a client, anyone else's)."""
    hands = getattr(state, "hands", None) or {}
    hand = hands.get(pid)
    return list(hand) if hand is not None else []


def _stock(state: Any) -> list:
    deck = getattr(state, "deck", None) or {}
    return list(deck.get(STOCK) or [])


def seat_order(state: Any, connected_only: bool = False) -> list:
    """The seated players' ids in seating order (arrival order); only the connected ones if asked."""
    return [
        pid
        for pid, entry in sorted(state.players.items(), key=lambda item: item[1].get("since", 0))
        if entry.get("seated") and (entry.get("connected", True) or not connected_only)
    ]


def _next_host(state: Any, exclude: Any) -> Any:
    """Who may start rounds after `exclude`: the longest-present person, else the longest-present bot."""
    candidates = [
        (bool(entry.get("bot")), not entry.get("connected", True), entry.get("since", 0), pid)
        for pid, entry in state.players.items()
        if pid != exclude
    ]
    return min(candidates)[3] if candidates else None


def _after(order: list, pid: Any) -> Any:
    """The player after `pid` in `order` (the first one if `pid` is not in it)."""
    if pid not in order:
        return order[0] if order else None
    return order[(order.index(pid) + 1) % len(order)]


def _turn_to(pid: Any) -> dict:
    return {"turn": pid, "drew": False, "choosing": False, "idle": 0.0}


# ---- state and seats ---------------------------------------------------------------------------------


def initial_state() -> GameState:
    return GameState(
        phase="lobby",
        players={},
        host=None,
        order=[],
        turn=None,
        discard=[],
        suit=None,
        stock_count=0,
        drew=False,
        choosing=False,
        idle=0.0,
        passes=0,
        timer=0.0,
        winner=None,
        winner_name="",
        last="",
        moves=0,
        rounds=0,
        ticket=0,
        hands={},
        deck={},
    )


def check_name(state: Any, name: str) -> Optional[str]:
    """Why a player called `name` may not join now (None: they may)."""
    taken = {str(entry.get("name", "")).casefold(): entry for entry in state.players.values()}
    entry = taken.get(name.casefold())
    if entry is not None:
        away = "" if entry.get("connected", True) else " (their seat is held for them)"
        return f"the name {name!r} is taken{away}: choose another one"
    if len(state.players) >= MAX_PLAYERS:
        return f"the table is full ({MAX_PLAYERS} players and spectators)"
    return None


def add_player(state: Any, pid: Any, name: str, bot: bool = False) -> dict:
    """The changes when player `pid` arrives: a seat in the lobby if one is free, else a spectator's place.

    Whoever arrives while a round is being played watches it and gets a seat at the next lobby.
    """
    if pid in state.players:
        return {}
    seated = state.phase == "lobby" and len(seat_order(state)) < MAX_SEATS
    ticket = int(state.ticket)
    changes: dict = {
        "ticket": ticket + 1,
        "moves": state.moves + 1,
        "players": {
            pid: {
                "name": name,
                "seated": seated,
                "ready": False,
                "connected": True,
                "bot": bool(bot),
                "since": ticket,
                "cards": 0,
                "wins": 0,
            }
        },
        "last": f"{name} joined" + ("" if seated else " (watching)"),
    }
    if state.host is None or state.host not in state.players:
        changes["host"] = pid
    return changes


def remove_player(state: Any, pid: Any, rng: Optional[random.Random] = None) -> dict:
    """The changes when `pid` leaves for good (after the rejoin grace period).

    Their cards are shuffled into the stock; if it was their turn, it passes on; a round left with one
    player ends with that player the winner.
    """
    entry = state.players.get(pid)
    if not isinstance(entry, dict):
        return {}
    name = entry["name"]
    changes: dict = {"players": {pid: TO_DELETE}, "moves": state.moves + 1, "last": f"{name} left"}
    if pid in state.hands:
        changes["hands"] = {pid: TO_DELETE}
    if state.host == pid:
        changes["host"] = _next_host(state, pid)
    order = list(state.order)
    if state.phase == "play" and pid in order:
        stock = _stock(state) + hand_of(state, pid)
        (rng or random).shuffle(stock)
        remaining = [other for other in order if other != pid]
        changes.update(order=remaining, stock_count=len(stock))
        changes["deck"] = {STOCK: stock}
        if len(remaining) == 1:
            merge(changes, _round_over(state, remaining[0], f"{name} left: nobody else is playing"))
        elif state.turn == pid:
            changes.update(_turn_to(_after(order, pid)))
    elif state.phase != "play" and pid in order:
        changes["order"] = [other for other in order if other != pid]
    return changes


def set_connected(state: Any, pid: Any, connected: bool) -> dict:
    """A player's connection was lost (their seat and hand are held) or is back (same id, same hand)."""
    entry = state.players.get(pid)
    if not isinstance(entry, dict) or entry.get("connected") == connected:
        return {}
    changes: dict = {
        "players": {pid: {"connected": connected}},
        "moves": state.moves + 1,
        "last": f"{entry['name']} " + ("is back" if connected else "lost the connection"),
    }
    if state.turn == pid:
        changes["idle"] = 0.0
    return changes


def set_ready(state: Any, pid: Any, ready: Any = None) -> dict:
    """A seated player in the lobby marks ready (`ready` True/False; None toggles)."""
    entry = state.players.get(pid)
    if state.phase != "lobby" or not isinstance(entry, dict) or not entry.get("seated"):
        return {}
    value = (not entry.get("ready")) if ready is None else bool(ready)
    if value == entry.get("ready"):
        return {}
    return {"players": {pid: {"ready": value}}, "moves": state.moves + 1}


def can_start(state: Any) -> bool:
    """Whether the lobby starts a round by itself: two or more seated and connected, all of them ready
    (a seated player whose connection is lost is not waited for: they sit the round out)."""
    seated = seat_order(state, connected_only=True)
    return (
        state.phase == "lobby"
        and len(seated) >= MIN_PLAYERS
        and all(state.players[pid].get("ready") for pid in seated)
    )


def start(state: Any, pid: Any, rng: random.Random) -> dict:
    """The host starts a round without waiting for everyone to be ready (two or more seated)."""
    if state.phase != "lobby" or pid != state.host or len(seat_order(state, True)) < MIN_PLAYERS:
        return {}
    return start_round(state, rng)


def start_round(state: Any, rng: random.Random) -> dict:
    """Deal: shuffle, give each seated (connected) player their cards, turn up the first card (never an
    8)."""
    order = seat_order(state, connected_only=True)[:MAX_SEATS]
    if len(order) < MIN_PLAYERS:
        return {}
    deck = new_deck(rng)
    count = hand_size(len(order))
    hands = {pid: [deck.pop() for _ in range(count)] for pid in order}
    starter = deck.pop()
    while rank_of(starter) == WILD:  # an 8 goes back into the stock, somewhere
        deck.insert(rng.randrange(len(deck) + 1), starter)
        starter = deck.pop()
    first = order[int(state.rounds) % len(order)]  # the first turn goes round the table, round by round
    changes: dict = {
        "phase": "play",
        "order": order,
        "hands": hands,
        "deck": {STOCK: deck},
        "stock_count": len(deck),
        "discard": [starter],
        "suit": suit_of(starter),
        "passes": 0,
        "timer": 0.0,
        "winner": None,
        "winner_name": "",
        "rounds": state.rounds + 1,
        "moves": state.moves + 1,
        "last": f"new round: {count} cards each",
        "players": {pid: {"cards": count, "ready": False} for pid in order},
    }
    changes.update(_turn_to(first))
    return changes


def _round_over(state: Any, winner: Any, how: str) -> dict:
    entry = state.players.get(winner, {})
    name = str(entry.get("name", "someone"))
    return {
        "phase": "over",
        "timer": OVER_PAUSE,
        "winner": winner,
        "winner_name": name,
        "turn": None,
        "drew": False,
        "choosing": False,
        "idle": 0.0,
        "players": {winner: {"wins": int(entry.get("wins", 0)) + 1}},
        "last": how,
    }


def _back_to_lobby(state: Any) -> dict:
    """After a round: everyone's hand goes, watchers take the free seats (longest waiting first)."""
    changes: dict = {
        "phase": "lobby",
        "order": [],
        "turn": None,
        "discard": [],
        "suit": None,
        "stock_count": 0,
        "drew": False,
        "choosing": False,
        "idle": 0.0,
        "passes": 0,
        "timer": 0.0,
        "winner": None,
        "winner_name": "",
        "moves": state.moves + 1,
        "last": "",
        "players": {pid: {"ready": False, "cards": 0} for pid in state.players},
    }
    if state.hands:
        changes["hands"] = {pid: TO_DELETE for pid in state.hands}
    if _stock(state):
        changes["deck"] = {STOCK: []}
    seats = len(seat_order(state))
    waiting = sorted(
        (entry.get("since", 0), pid) for pid, entry in state.players.items() if not entry.get("seated")
    )
    for _, pid in waiting[: max(0, MAX_SEATS - seats)]:
        changes["players"][pid]["seated"] = True
    return changes


# ---- moves -------------------------------------------------------------------------------------------


def is_legal(card: str, top: Optional[str], suit: Optional[str]) -> bool:
    """An 8 is always legal; any other card must match the suit to follow or the top card's rank."""
    if rank_of(card) == WILD or top is None:
        return True
    return suit_of(card) == suit or rank_of(card) == rank_of(top)


def legal_cards(state: Any, pid: Any, hand: Optional[list] = None) -> list:
    """The cards `pid` may play now (none unless it is their turn and they are not naming a suit)."""
    if state.phase != "play" or state.turn != pid or state.choosing:
        return []
    hand = hand_of(state, pid) if hand is None else list(hand)
    if not hand:
        return []
    if state.drew:  # after drawing, only the drawn card may be played
        hand = hand[-1:]
    top = state.discard[-1] if state.discard else None
    return [card for card in hand if is_legal(card, top, state.suit)]


def can_draw(state: Any, pid: Any) -> bool:
    """Whether `pid` may draw: their turn, not drawn yet, and a card in the stock or under the top card."""
    return (
        state.phase == "play"
        and state.turn == pid
        and not state.choosing
        and not state.drew
        and (state.stock_count > 0 or len(state.discard) > 1)
    )


def can_pass(state: Any, pid: Any) -> bool:
    """Whether `pid` may pass: their turn, after drawing, or when there is nothing left to draw."""
    return (
        state.phase == "play"
        and state.turn == pid
        and not state.choosing
        and (state.drew or (state.stock_count == 0 and len(state.discard) <= 1))
    )


def play(state: Any, pid: Any, card: Any) -> dict:
    """`pid` plays `card` from their hand (a legal one, on their turn); an empty hand wins the round."""
    if not isinstance(card, str) or card not in legal_cards(state, pid):
        return {}
    hand = hand_of(state, pid)
    hand.remove(card)
    name = _name(state, pid)
    changes: dict = {
        "hands": {pid: hand},
        "discard": [*state.discard, card],
        "suit": suit_of(card),
        "players": {pid: {"cards": len(hand)}},
        "passes": 0,
        "drew": False,
        "moves": state.moves + 1,
        "last": f"{name} played {card_label(card)}",
    }
    if not hand:
        return merge(changes, _round_over(state, pid, f"{name} played {card_label(card)}, their last card"))
    if rank_of(card) == WILD:
        changes["choosing"] = True
        return changes
    changes.update(_turn_to(_after(list(state.order), pid)))
    return changes


def choose_suit(state: Any, pid: Any, suit: Any) -> dict:
    """After an 8, its player names the suit to follow; then the turn passes on."""
    if state.phase != "play" or state.turn != pid or not state.choosing or suit not in SUITS:
        return {}
    changes: dict = {
        "suit": suit,
        "moves": state.moves + 1,
        "last": f"{_name(state, pid)} named {SUIT_NAMES[suit]} {SUIT_SYMBOLS[suit]}",
    }
    changes.update(_turn_to(_after(list(state.order), pid)))
    return changes


def draw(state: Any, pid: Any, rng: random.Random) -> dict:
    """`pid` draws one card (the discard pile under the top card is shuffled into an empty stock first)."""
    if not can_draw(state, pid):
        return {}
    stock = _stock(state)
    discard = list(state.discard)
    note = ""
    changes: dict = {}
    if not stock:
        stock = discard[:-1]
        rng.shuffle(stock)
        discard = discard[-1:]
        changes["discard"] = discard
        note = " (the discard pile was shuffled into the stock)"
    card = stock.pop()
    hand = [*hand_of(state, pid), card]
    changes.update(
        {
            "hands": {pid: hand},
            "deck": {STOCK: stock},
            "stock_count": len(stock),
            "players": {pid: {"cards": len(hand)}},
            "drew": True,
            "moves": state.moves + 1,
            "last": f"{_name(state, pid)} drew a card{note}",
        }
    )
    return changes


def pass_turn(state: Any, pid: Any) -> dict:
    """`pid` passes (after drawing, or with nothing to draw). When every player in turn passed with
    nothing left to draw, nobody can finish the round: it ends, and the fewest cards wins."""
    if not can_pass(state, pid):
        return {}
    return _pass_on(state, pid, f"{_name(state, pid)} passed")


def _pass_on(state: Any, pid: Any, message: str) -> dict:
    nothing_to_draw = state.stock_count == 0 and len(state.discard) <= 1
    passes = int(state.passes) + 1 if nothing_to_draw else 0  # passes in a row with nothing to draw
    order = list(state.order)
    changes: dict = {"passes": passes, "moves": state.moves + 1, "last": message}
    if passes >= len(order):
        counts = {other: state.players[other].get("cards", 0) for other in order}
        fewest = min(order, key=lambda other: (counts[other], order.index(other)))
        return merge(changes, _round_over(state, fewest, "nobody can play or draw: the fewest cards win"))
    changes.update(_turn_to(_after(order, pid)))
    return changes


def step(state: Any, dt: float, rng: random.Random) -> dict:
    """What time does: a ready lobby deals, a finished round returns to the lobby, and a disconnected
    player's turn passes after SKIP_AFTER seconds (an 8 they played gets a suit: their commonest)."""
    if state.phase == "lobby":
        return start_round(state, rng) if can_start(state) else {}
    if state.phase == "over":
        timer = float(state.timer) - dt
        return _back_to_lobby(state) if timer <= 0 else {"timer": timer}
    turn = state.turn
    entry = state.players.get(turn)
    if state.phase != "play" or not isinstance(entry, dict) or entry.get("connected", True):
        return {}
    idle = float(state.idle) + dt
    if idle < SKIP_AFTER:
        return {"idle": idle}
    message = f"{entry['name']} was skipped (disconnected)"
    if state.choosing:
        suit = _best_suit(hand_of(state, turn), rng)
        changes = {"suit": suit, "moves": state.moves + 1, "last": message}
        changes.update(_turn_to(_after(list(state.order), turn)))
        return changes
    return _pass_on(state, turn, message)


# ---- bots --------------------------------------------------------------------------------------------


def _best_suit(hand: list, rng: random.Random) -> str:
    """The suit a player holds most of (8s aside); a random one if that says nothing."""
    counts = Counter(suit_of(card) for card in hand if rank_of(card) != WILD)
    if not counts:
        return rng.choice(SUITS)
    most = max(counts.values())
    return rng.choice([suit for suit in SUITS if counts[suit] == most])


def choose_move(state: Any, pid: Any, rng: random.Random) -> Optional[tuple]:
    """A legal move for `pid` from what they can see (their own hand and the table): (event, data), or
    None when there is nothing to do. Keeps 8s for when nothing else fits, plays the card whose suit the
    hand holds most of, and draws only when it must."""
    entry = state.players.get(pid)
    if not isinstance(entry, dict):
        return None
    if state.phase == "lobby":
        return ("READY", {"ready": True}) if entry.get("seated") and not entry.get("ready") else None
    if state.phase != "play" or state.turn != pid:
        return None
    hand = hand_of(state, pid)
    if state.choosing:
        return ("SUIT", {"suit": _best_suit(hand, rng)})
    legal = legal_cards(state, pid, hand)
    if legal:
        counts = Counter(suit_of(card) for card in hand)
        plain = [card for card in legal if rank_of(card) != WILD]
        if plain:
            best = max(counts[suit_of(card)] for card in plain)
            return ("PLAY", {"card": rng.choice([card for card in plain if counts[suit_of(card)] == best])})
        return ("PLAY", {"card": legal[0]})
    if can_draw(state, pid):
        return ("DRAW", {})
    if can_pass(state, pid):
        return ("PASS", {})
    return None
