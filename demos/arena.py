"""`python -m demos.arena ...` in a checkout is `pygase-demo arena ...`."""

if __name__ == "__main__":
    from demos import forward

    forward("arena")
