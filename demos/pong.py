"""`python -m demos.pong ...` in a checkout is `pygase-demo pong ...`."""

if __name__ == "__main__":
    from demos import forward

    forward("pong")
