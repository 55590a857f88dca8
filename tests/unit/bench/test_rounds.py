"""``bench.rounds.in_turn``: pairs in rounds, which side goes first alternating."""

from bench.rounds import in_turn


def test_pairs_keep_their_sides_while_the_first_to_run_alternates() -> None:
    order: list[str] = []

    def first() -> str:
        order.append("a")
        return f"a{len(order)}"

    def second() -> str:
        order.append("b")
        return f"b{len(order)}"

    assert in_turn(first, second, 3) == [("a1", "b2"), ("a4", "b3"), ("a5", "b6")]
    assert order == ["a", "b", "b", "a", "a", "b"]
