"""Operations: the system checks and the metrics."""
