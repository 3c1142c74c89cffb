"""PostgreSQL change data capture: slot and publication, pgoutput decoding, snapshot, delivery."""
