"""Operations: launching game instances under Wine and checking a set-up."""
