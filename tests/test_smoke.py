from conftest import child_eval, echo


def test_closure_with_shared_cell_round_trips():
    def outer():
        n = 10

        def bump(x):
            nonlocal n
            n += x
            return n

        def peek():
            return n

        return bump, peek

    assert child_eval(outer(), "(obj[0](1), obj[0](2), obj[1]())") == (11, 13, 13)


def test_echo_lambda():
    k = 7
    f = echo(lambda x: x + k)
    assert f(1) == 8
