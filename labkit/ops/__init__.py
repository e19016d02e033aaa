"""Operations: one function per labctl command. They take a course and a target, emit events, return results."""
