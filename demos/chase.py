"""`python -m demos.chase ...` in a checkout is `pygase-demo chase ...`."""

if __name__ == "__main__":
    from demos import forward

    forward("chase")
