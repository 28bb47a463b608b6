"""`python -m demos.cards ...` in a checkout is `pygase-demo cards ...`."""

if __name__ == "__main__":
    from demos import forward

    forward("cards")
