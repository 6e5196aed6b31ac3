"""SWE sandboxes: real repositories, shell and edit tools, tests as reward (see ``env``)."""
