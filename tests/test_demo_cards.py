"""The cards demo (Crazy Eights): its rules (lobby, dealing, turns, 8s, drawing, reshuffling, winning,
spectators, dropped players), its bots, its drawing, and games over the network."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import pytest

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import pygame  # noqa: E402

from pygase import GameStateUpdate, JoinRefused  # noqa: E402
from pygase_demos._framework import PlayerView  # noqa: E402
from pygase_demos.cards import rules  # noqa: E402
from pygase_demos.cards.game import HEIGHT, WIDTH, CardsDemo, CardsScreen  # noqa: E402
from pygase_pygame import GameWindow  # noqa: E402

pytestmark = pytest.mark.timeout(30)

FULL_DECK = Counter(rank + suit for suit in rules.SUITS for rank in rules.RANKS)


def apply(state, changes):
    """The state with `changes` deep-merged, as the server does it."""
    return state + GameStateUpdate(state.time_order + 1, **changes) if changes else state


def table(*names, ready=False):
    """A lobby with these players (ids 1, 2, ...), all marked ready if asked."""
    state = rules.initial_state()
    for pid, name in enumerate(names, start=1):
        state = apply(state, rules.add_player(state, pid, name, bot=name.endswith("(bot)")))
        if ready:
            state = apply(state, rules.set_ready(state, pid, True))
    return state


def dealt(*names, seed=1):
    state = table(*names, ready=True)
    return apply(state, rules.step(state, 0.02, random.Random(seed)))


def all_cards(state):
    cards = Counter(state.discard) + Counter(state.deck.get(rules.STOCK, []))
    for hand in state.hands.values():
        cards += Counter(hand)
    return cards


def rig(state, pid, hand, top, suit=None, stock=None):
    """Give `pid` this hand, this top card, and it is their turn (the rest of the deck in the stock)."""
    others = {other: list(cards) for other, cards in state.hands.items() if other != pid}
    used = Counter(hand) + Counter([top])
    for cards in others.values():
        used += Counter(cards)
    rest = list((FULL_DECK - used).elements()) if stock is None else stock
    return apply(
        state,
        {
            "hands": {pid: list(hand), **others},
            "players": {pid: {"cards": len(hand)}},
            "discard": [top],
            "suit": suit or rules.suit_of(top),
            "deck": {rules.STOCK: rest},
            "stock_count": len(rest),
            "turn": pid,
            "drew": False,
            "choosing": False,
        },
    )


# ---- the lobby ---------------------------------------------------------------------------------------


def test_a_round_starts_when_every_seated_player_is_ready_and_not_before():
    state = table("Ann", "Ben", "Cat")
    rng = random.Random(1)
    state = apply(state, rules.set_ready(state, 1, True))
    state = apply(state, rules.set_ready(state, 2, True))
    assert rules.step(state, 0.02, rng) == {}  # Cat is not ready
    state = apply(state, rules.set_ready(state, 3, None))  # R toggles
    state = apply(state, rules.step(state, 0.02, rng))
    assert state.phase == "play" and state.order == [1, 2, 3]


def test_one_player_alone_never_starts_a_round():
    state = table("Ann", ready=True)
    assert rules.step(state, 0.02, random.Random(1)) == {}
    assert rules.start(state, 1, random.Random(1)) == {}


def test_the_host_may_start_without_everyone_ready_and_nobody_else_may():
    state = table("Ann", "Ben", "Cat")
    assert state.host == 1
    assert rules.start(state, 2, random.Random(1)) == {}  # Ben is not the host
    state = apply(state, rules.start(state, 1, random.Random(1)))
    assert state.phase == "play"


def test_the_host_role_passes_to_a_person_when_the_host_leaves():
    state = table("Ann", "Bit (bot)", "Ben")
    state = apply(state, rules.remove_player(state, 1))
    assert state.host == 3  # a person before a bot that came earlier


def test_a_taken_name_is_refused_and_a_full_table_seats_spectators():
    state = table("Ann", "Ben", "Cat", "Dan", "Eve", "Fay", "Gus")
    assert "taken" in rules.check_name(state, "ann")
    assert rules.check_name(state, "Hal") is None
    assert [pid for pid in state.players if state.players[pid]["seated"]] == [1, 2, 3, 4, 5, 6]
    assert state.players[7]["seated"] is False


# ---- dealing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("count, cards", [(2, 7), (3, 5), (6, 5)])
def test_deal_gives_7_cards_to_two_players_and_5_to_more_from_one_deck(count, cards):
    names = ["Ann", "Ben", "Cat", "Dan", "Eve", "Fay"][:count]
    state = dealt(*names)
    assert [len(state.hands[pid]) for pid in state.order] == [cards] * count
    assert [state.players[pid]["cards"] for pid in state.order] == [cards] * count
    assert all_cards(state) == FULL_DECK
    assert state.stock_count == 52 - count * cards - 1
    assert rules.rank_of(state.discard[-1]) != "8" and state.suit == rules.suit_of(state.discard[-1])


def test_the_first_card_turned_up_is_never_an_8():
    for seed in range(60):
        assert rules.rank_of(dealt("Ann", "Ben", seed=seed).discard[0]) != "8"


def test_the_first_turn_goes_round_the_table_from_round_to_round():
    state = apply(table("Ann", "Ben", "Cat"), {"rounds": 1})
    state = apply(state, rules.start(state, 1, random.Random(1)))
    assert state.turn == 2


# ---- turns -------------------------------------------------------------------------------------------


def test_a_card_must_match_the_suit_or_the_rank_and_an_8_always_fits():
    state = rig(dealt("Ann", "Ben"), 1, ["5H", "9C", "KS", "8D", "9H"], top="9S")
    assert sorted(rules.legal_cards(state, 1)) == sorted(["9C", "KS", "8D", "9H"])
    assert rules.play(state, 1, "5H") == {}  # neither spades nor a 9
    assert rules.play(state, 1, "QS") == {}  # not in the hand
    assert rules.play(state, 2, "KS") == {}  # not Ben's turn (and not his card)
    state = apply(state, rules.play(state, 1, "KS"))
    assert state.discard[-1] == "KS" and "KS" not in state.hands[1]
    assert state.players[1]["cards"] == 4 and state.turn == 2


def test_an_8_waits_for_its_player_to_name_the_suit_then_that_suit_must_be_followed():
    state = rig(dealt("Ann", "Ben"), 1, ["8D", "2C", "3C"], top="9S")
    state = apply(state, rules.play(state, 1, "8D"))
    assert state.choosing and state.turn == 1
    assert rules.play(state, 1, "2C") == {}  # name the suit first
    assert rules.choose_suit(state, 2, "C") == {}  # only the 8's player names it
    assert rules.choose_suit(state, 1, "X") == {}
    state = apply(state, rules.choose_suit(state, 1, "C"))
    assert (state.suit, state.choosing, state.turn) == ("C", False, 2)
    state = rig(state, 2, ["4C", "4D", "8S"], top="8D", suit="C")
    assert sorted(rules.legal_cards(state, 2)) == ["4C", "8S"]


def test_drawing_gives_one_card_which_may_then_be_played_or_passed():
    state = rig(dealt("Ann", "Ben"), 1, ["5H", "2C"], top="9S", stock=["3D", "9D"])
    assert rules.pass_turn(state, 1) == {}  # no passing before drawing
    state = apply(state, rules.draw(state, 1, random.Random(1)))
    assert state.hands[1] == ["5H", "2C", "9D"] and state.drew and state.stock_count == 1
    assert rules.draw(state, 1, random.Random(1)) == {}  # one card per turn
    assert rules.legal_cards(state, 1) == ["9D"]  # only the drawn card
    passed = apply(state, rules.pass_turn(state, 1))
    assert passed.turn == 2 and not passed.drew and len(passed.hands[1]) == 3
    played = apply(state, rules.play(state, 1, "9D"))
    assert played.discard[-1] == "9D" and played.turn == 2


def test_an_empty_stock_is_refilled_from_the_discard_pile_under_its_top_card():
    state = dealt("Ann", "Ben")
    hands = {pid: list(hand) for pid, hand in state.hands.items()}
    pile = list((FULL_DECK - sum((Counter(hand) for hand in hands.values()), Counter())).elements())
    top = pile.pop()
    state = apply(state, {"discard": [*pile, top], "deck": {rules.STOCK: []}, "stock_count": 0})
    state = apply(state, rules.draw(state, state.turn, random.Random(2)))
    assert state.discard == [top]
    assert state.stock_count == len(pile) - 1
    assert all_cards(state) == FULL_DECK
    assert "shuffled" in state.last


def test_with_nothing_to_draw_a_player_may_pass_and_a_round_nobody_can_finish_ends():
    state = rig(dealt("Ann", "Ben"), 1, ["5H", "2C"], top="9S", stock=[])
    state = apply(state, {"hands": {2: ["4D", "3H", "7H"]}, "players": {2: {"cards": 3}}})
    assert not rules.can_draw(state, 1) and rules.can_pass(state, 1)
    state = apply(state, rules.pass_turn(state, 1))
    assert state.phase == "play" and state.turn == 2
    state = apply(state, rules.pass_turn(state, 2))
    assert state.phase == "over" and state.winner == 1  # the fewest cards


def test_the_first_to_empty_their_hand_wins_and_the_lobby_returns_with_spectators_seated():
    state = rig(dealt("Ann", "Ben"), 1, ["KS"], top="9S")
    state = apply(state, rules.add_player(state, 3, "Cat"))  # arrives during the round: watches
    assert state.players[3]["seated"] is False and 3 not in state.hands
    state = apply(state, rules.play(state, 1, "KS"))
    assert (state.phase, state.winner, state.winner_name) == ("over", 1, "Ann")
    assert state.players[1]["wins"] == 1 and state.turn is None
    state = apply(state, rules.step(state, rules.OVER_PAUSE - 0.5, random.Random(1)))
    assert state.phase == "over"  # the winner is shown for a while
    state = apply(state, rules.step(state, 1.0, random.Random(1)))
    assert state.phase == "lobby" and state.hands == {} and state.discard == []
    assert state.players[3]["seated"] is True
    assert not any(entry["ready"] for entry in state.players.values())


# ---- dropping out and leaving ------------------------------------------------------------------------


def test_a_dropped_player_keeps_seat_and_hand_and_is_skipped_only_after_20_seconds():
    state = dealt("Ann", "Ben", "Cat")
    turn = state.turn
    hand = list(state.hands[turn])
    state = apply(state, rules.set_connected(state, turn, False))
    assert state.players[turn]["connected"] is False
    rng = random.Random(1)
    for _ in range(int((rules.SKIP_AFTER - 1) / 0.5)):
        state = apply(state, rules.step(state, 0.5, rng))
    assert state.turn == turn  # the game waits ...
    back = apply(state, rules.set_connected(state, turn, True))
    assert back.players[turn]["connected"] and back.hands[turn] == hand and back.turn == turn
    assert rules.step(back, 5.0, rng) == {}  # ... and a connected player is never hurried
    state = apply(state, rules.step(state, 2.0, rng))
    assert state.turn == rules._after(list(state.order), turn)  # ... but not for ever
    assert state.hands[turn] == hand and "skipped" in state.last


def test_a_dropped_player_who_named_no_suit_gets_one_when_skipped():
    state = rig(dealt("Ann", "Ben"), 1, ["8D", "2C", "3C"], top="9S")
    state = apply(state, rules.play(state, 1, "8D"))
    state = apply(state, rules.set_connected(state, 1, False))
    state = apply(state, rules.step(state, rules.SKIP_AFTER + 0.1, random.Random(1)))
    assert (state.suit, state.turn, state.choosing) == ("C", 2, False)


def test_a_player_who_leaves_for_good_returns_their_cards_to_the_stock():
    state = dealt("Ann", "Ben", "Cat")
    turn = state.turn
    state = apply(state, rules.remove_player(state, turn, random.Random(1)))
    assert turn not in state.players and turn not in state.hands and turn not in state.order
    assert state.turn in state.order and state.phase == "play"
    assert all_cards(state) == FULL_DECK
    assert state.stock_count == 52 - 2 * 5 - 1


def test_the_last_player_left_in_a_round_wins_it():
    state = dealt("Ann", "Ben")
    state = apply(state, rules.remove_player(state, 2, random.Random(1)))
    assert state.phase == "over" and state.winner == 1


def test_a_seated_player_who_is_away_when_the_round_starts_sits_it_out():
    state = table("Ann", "Ben", "Cat", ready=True)
    state = apply(state, rules.set_ready(state, 3, False))
    state = apply(state, rules.set_connected(state, 3, False))
    state = apply(state, rules.step(state, 0.02, random.Random(1)))  # Cat is not waited for
    assert state.phase == "play" and state.order == [1, 2] and 3 not in state.hands


# ---- bots --------------------------------------------------------------------------------------------


def play_out(state, rng, limit=600):
    """Let `choose_move` play every seat until the round ends; every move must be legal."""
    actions = {
        "PLAY": lambda s, pid, data: rules.play(s, pid, data["card"]),
        "DRAW": lambda s, pid, data: rules.draw(s, pid, rng),
        "PASS": lambda s, pid, data: rules.pass_turn(s, pid),
        "SUIT": lambda s, pid, data: rules.choose_suit(s, pid, data["suit"]),
    }
    moves = 0
    while state.phase == "play" and moves < limit:
        pid = state.turn
        for other in state.order:  # only the player whose turn it is has something to do
            assert other == pid or rules.choose_move(state, other, rng) is None
        event, data = rules.choose_move(state, pid, rng)
        changes = actions[event](state, pid, data)
        assert changes, f"{event} {data} was refused"
        state = apply(state, changes)
        assert all_cards(state) == FULL_DECK
        moves += 1
    return state, moves


@pytest.mark.parametrize("players", [2, 4, 6])
def test_bots_play_only_legal_moves_and_finish_rounds(players):
    for seed in range(4):
        rng = random.Random(seed)
        state = dealt(*[f"B{index} (bot)" for index in range(players)], seed=seed)
        state, moves = play_out(state, rng)
        assert state.phase == "over" and state.winner in state.order
        assert rules.hand_of(state, state.winner) == []


def test_bots_mark_ready_in_the_lobby():
    state = table("Ada (bot)", "Bit (bot)")
    assert rules.choose_move(state, 1, random.Random(1)) == ("READY", {"ready": True})
    state = apply(state, rules.set_ready(state, 1, True))
    assert rules.choose_move(state, 1, random.Random(1)) is None


def test_a_bot_keeps_its_8s_and_names_the_suit_it_holds_most_of():
    state = rig(dealt("Ada (bot)", "Bit (bot)"), 1, ["8D", "2S", "QC", "4C"], top="2C")
    assert rules.choose_move(state, 1, random.Random(1)) in (
        ("PLAY", {"card": "QC"}),
        ("PLAY", {"card": "4C"}),
    )
    state = rig(state, 1, ["8D", "2C", "3C", "5H"], top="9S")
    state = apply(state, rules.play(state, 1, "8D"))
    assert rules.choose_move(state, 1, random.Random(1)) == ("SUIT", {"suit": "C"})


# ---- the window --------------------------------------------------------------------------------------


@pytest.fixture
def window():
    window = GameWindow(size=(WIDTH, HEIGHT), fps=0)
    yield window
    window.close()


def screen_for(window, pid):
    screen = CardsScreen(window, PlayerView("Ann", pid))
    screen.autoplay = False
    sent = []
    screen.send = lambda event, **data: sent.append((event, data))
    return screen, sent


def render(window, screen, state):
    window.screen.fill(window.background)
    screen.update(state)
    screen.draw(window.screen, state)
    return window.screen


def colours(surface, box=(0, 0, WIDTH, HEIGHT), step=6):
    left, top, right, bottom = box
    return {surface.get_at((x, y))[:3] for x in range(left, right, step) for y in range(top, bottom, step)}


def test_every_phase_draws_and_your_hand_is_face_up(window, tmp_path):
    screen, _ = screen_for(window, 1)
    lobby = table("Ann", "Ben", "Cat (bot)")
    surface = render(window, screen, lobby)
    assert screen.status(lobby)[0].startswith("press R")
    state = rig(dealt("Ann", "Ben", "Cat (bot)"), 1, ["5H", "9C", "KS", "8D", "9H"], top="9S")
    surface = render(window, screen, state)
    assert [card for _, card in screen.card_boxes] == ["KS", "5H", "9H", "9C", "8D"]  # sorted by suit
    assert screen.status(state)[0].startswith("your turn")
    hand_area = colours(surface, (40, HEIGHT - 150, WIDTH - 40, HEIGHT - 10))
    assert len(hand_area) > 10  # faces: paper, red and black ink, shadows
    pygame.image.save(surface, str(tmp_path / "cards.png"))
    choosing = apply(rig(state, 1, ["5H", "9C"], top="8D"), {"choosing": True})
    render(window, screen, choosing)
    assert screen.status(choosing)[0].startswith("choose a suit")
    assert [action for _, action in screen.buttons] == [("SUIT", {"suit": suit}) for suit in rules.SUITS]
    over = apply(state, rules._round_over(state, 2, "Ben played 4♣, their last card"))
    render(window, screen, over)
    assert "round over" in screen.status(over)[0]


def test_a_spectator_sees_the_table_and_the_counts_but_no_hand(window):
    state = dealt("Ann", "Ben", "Cat")
    state = apply(state, rules.add_player(state, 4, "Dan"))
    watched = apply(state, {"hands": {pid: rules.TO_DELETE for pid in state.hands}, "deck": {}})
    screen, _ = screen_for(window, 4)
    render(window, screen, watched)
    assert screen.card_boxes == []  # no cards of anyone's face up
    assert "watching" in screen.status(watched)[0]
    assert screen.others(watched) == [1, 2, 3]


def test_clicks_and_keys_send_the_moves(window):
    state = rig(dealt("Ann", "Ben"), 1, ["5H", "9C", "KS"], top="9S")
    screen, sent = screen_for(window, 1)
    render(window, screen, state)
    boxes = {card: rect for rect, card in screen.card_boxes}
    screen.on_mouse_down(boxes["5H"].center, 1)  # does not fit: a message, nothing sent
    assert sent == [] and "does not fit" in screen.flash[0]
    screen.on_mouse_down(boxes["9C"].center, 1)
    assert sent == [("PLAY", {"card": "9C"})]
    screen.on_mouse_down(screen.stock_box.center, 1)
    screen.on_key_down(pygame.K_d)
    screen.on_key_down(pygame.K_p)  # not before drawing
    assert sent[1:] == [("DRAW", {}), ("DRAW", {})]
    assert screen.my_hand(state) == ["KS", "5H", "9C"]
    screen.cursor = 0
    screen.on_key_down(pygame.K_LEFT)  # round to the last card
    screen.on_key_down(pygame.K_RETURN)
    assert sent[-1] == ("PLAY", {"card": "9C"})
    choosing = apply(rig(state, 1, ["5H", "9C"], top="8D"), {"choosing": True})
    render(window, screen, choosing)
    screen.on_key_down(pygame.K_3)
    assert sent[-1] == ("SUIT", {"suit": "D"})
    lobby = table("Ann", "Ben")
    render(window, screen, lobby)
    screen.on_key_down(pygame.K_r)
    screen.on_key_down(pygame.K_RETURN)  # Ann is the host
    assert sent[-2:] == [("READY", {}), ("START", {})]


# ---- the demo's server hooks -------------------------------------------------------------------------


def test_moves_are_the_senders_whatever_an_event_says():
    demo = CardsDemo(seed=1)
    state = rig(dealt("Ann", "Ben"), 1, ["5H", "9C", "KS"], top="9S")
    handlers = demo.handlers()
    assert handlers["PLAY"](sender_id=2, game_state=state, card="9C", player=1, player_id=1) == {}
    assert handlers["PLAY"]("junk", sender_id=1, game_state=state, card=["9C"]) == {}
    assert handlers["PLAY"](sender_id=1, game_state=state, card="9C")["discard"][-1] == "9C"
    assert handlers["SUIT"](sender_id=1, game_state=state, suit={"S": 1}) == {}


def test_a_player_joins_with_their_name_and_a_taken_name_is_refused():
    demo = CardsDemo(seed=1)
    state = rules.initial_state()
    state = apply(state, demo.player_joined(state, 1, {"name": "  Ann  "}))
    state = apply(state, demo.player_joined(state, 2, {}))
    assert [entry["name"] for entry in state.players.values()] == ["Ann", "player"]
    with pytest.raises(JoinRefused, match="taken"):
        demo.player_joined(state, 3, {"name": "ANN"})
    state = apply(state, demo.player_dropped(state, 1))
    assert state.players[1]["connected"] is False
    with pytest.raises(JoinRefused, match="held"):
        demo.player_joined(state, 3, {"name": "Ann"})
    state = apply(state, demo.player_returned(state, 1))
    assert state.players[1]["connected"] is True


# ---- over the network --------------------------------------------------------------------------------


@pytest.fixture
def served():
    """A cards backend on loopback, and a way to join it by name; everything closed afterwards."""
    from pygase import Client
    from pygase_demos._framework import make_backend

    backend = make_backend(CardsDemo(seed=5))
    thread = backend.run_in_thread("127.0.0.1", 0)
    clients: list = []

    def join(name):
        client = Client()
        client.connect_in_thread(backend.server.port, "127.0.0.1", join_data={"name": name})
        clients.append(client)
        return client

    yield backend, join
    for client in clients:
        client.disconnect()
    backend.shutdown()
    thread.join(timeout=5)


def server_state(backend):
    return backend.game_state_store.get_game_state()


def test_each_player_receives_only_their_own_hand_and_a_spectator_none(served):
    backend, join = served
    ann, ben = join("Ann"), join("Ben")
    for client in (ann, ben):
        client.wait_until(lambda state, client=client: client.player_id in state.players, timeout=5)
        client.dispatch_event("READY", ready=True, retries=5)
    ann.wait_until(lambda state: state.phase == "play", timeout=5)
    cat = join("Cat")  # arrives during the round
    cat.wait_until(lambda state: cat.player_id in state.players, timeout=5)
    server = server_state(backend)
    assert sorted(server.hands) == sorted([ann.player_id, ben.player_id])
    for client in (ann, ben):
        client.wait_until(lambda state, client=client: client.player_id in state.hands, timeout=5)
        with client.access_game_state() as state:
            assert list(state.hands) == [client.player_id]  # nobody else's hand ...
            assert state.hands[client.player_id] == list(server.hands[client.player_id])
            assert state.deck == {}  # ... and not the stock
            assert state.stock_count == len(server.deck[rules.STOCK])
    with cat.access_game_state() as state:
        assert state.hands == {} and state.deck == {}
        assert state.players[cat.player_id]["seated"] is False
        assert {state.players[pid]["cards"] for pid in state.order} == {7}  # the counts are public
    impostor = join("ann")
    with pytest.raises(ConnectionRefusedError, match="taken"):
        impostor.wait_until(lambda state: False, timeout=5)


def test_a_player_who_drops_is_shown_disconnected_and_comes_back_to_the_same_seat_and_hand(
    served, monkeypatch, window
):
    from pygase.connection import ServerConnection

    monkeypatch.setattr(ServerConnection, "timeout", 1.0)  # the server's 5 s of silence, shortened
    backend, join = served
    ann, ben = join("Ann"), join("Ben")
    for client in (ann, ben):
        client.wait_until(lambda state, client=client: client.player_id in state.players, timeout=5)
        client.dispatch_event("READY", ready=True, retries=5)
    ann.wait_until(lambda state: ann.player_id in state.hands, timeout=5)
    ann_id = ann.player_id
    hand = list(server_state(backend).hands[ann_id])
    gone = threading.Event()
    ann.register_disconnect_handler(gone.set)
    ann.connection._close()  # the program loses its connection without a goodbye: the server hears silence
    assert gone.wait(5)
    ben.wait_until(lambda state: not state.players[ann_id]["connected"], timeout=5)
    screen, _ = screen_for(window, ben.player_id)
    with ben.access_game_state() as state:
        render(window, screen, state)
        assert screen.seat_detail(state, ann_id, state.players[ann_id], True)[0].startswith("(disconnected)")
        assert sorted(state.order) == sorted([ann_id, ben.player_id])  # the seat is held
    deadline = time.monotonic() + 3
    while True:  # the same client connects again (once its old connection has wound down)
        try:
            ann.connect_in_thread(backend.server.port, "127.0.0.1", join_data={"name": "Ann"})
            break
        except RuntimeError:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    ann.wait_until(lambda state: ann.player_id is not None and ann.player_id in state.hands, timeout=5)
    assert ann.player_id == ann_id
    with ann.access_game_state() as state:
        assert state.hands[ann_id] == hand and state.players[ann_id]["seated"]
        assert ann_id in state.order and state.phase == "play"
    ben.wait_until(lambda state: state.players[ann_id]["connected"], timeout=5)
    assert server_state(backend).last == "Ann is back"


def test_a_local_game_with_bots_plays_headless(tmp_path, monkeypatch):
    from pygase_demos._framework import run_demo
    from pygase_demos.cards.game import DEMO

    monkeypatch.setattr(DEMO, "think", (0.05, 0.15))
    shot = tmp_path / "cards.png"
    run = run_demo(DEMO, ["local", "--bots", "2", "--headless", "--seconds", "3", "--screenshot", str(shot)])
    state = run.final_state
    assert run.bots == 2 and len(state.players) == 3
    assert state.rounds >= 1 and state.moves >= 12  # everyone was ready, a round was dealt and played
    image = pygame.image.load(str(shot))
    assert len(colours(image, (0, 0, WIDTH, HEIGHT), 7)) > 20  # the table, cards, names: not a blank screen
