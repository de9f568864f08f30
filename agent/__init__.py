"""The LiveKit side: worker, session, simulated caller, and thin plugins for our services."""
