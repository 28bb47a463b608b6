"""Chase: a game of tag. The chaser passes the role by catching someone; runners score by surviving.

python -m demos.chase             # play locally against bots (arrow keys or WASD)
python -m demos.chase host        # host a LAN game
python -m demos.chase join HOST   # join one
"""
