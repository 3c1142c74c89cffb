"""faust-streaming processors: one consumer group per subscribing agency, applying its topics
to its replica in batches, with dead letters for events that can never be applied."""
