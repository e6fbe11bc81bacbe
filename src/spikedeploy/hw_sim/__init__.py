"""Running NIR programs: the batched reference simulator and Lava's CPU simulator.

Importing this package does not import Lava: Lava runs in a child process
(see ``lava_runner``) so that a hung or crashed Lava run can be killed.
"""
