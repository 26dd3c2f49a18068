//! Photo-receipt orders: upload, normalise, review, and the receipt itself.
