"""``stelae serve``: the write API, the sequencer and static reads in one local process."""
