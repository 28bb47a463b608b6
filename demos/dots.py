"""`python -m demos.dots ...` in a checkout is `pygase-demo dots ...`."""

if __name__ == "__main__":
    from demos import forward

    forward("dots")
