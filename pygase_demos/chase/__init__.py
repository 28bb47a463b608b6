"""Chase: a game of tag. The chaser passes the role by catching someone; runners score by surviving.

pygase-demo chase             # play locally against bots (arrow keys or WASD)
pygase-demo chase host        # host a LAN game
pygase-demo chase join HOST   # join one
"""
