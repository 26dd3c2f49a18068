//! 户政业务 appointments: halls, business types, slots, booking, and the card's progress.
