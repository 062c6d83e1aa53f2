-- The newest change event of the span a delivery attempt was made for. Until that
-- span is delivered, every retry (after a restart or another instance's takeover too)
-- sends exactly the same span, so a webhook event keeps one id; changes that arrive
-- meanwhile follow in the next delivery.
ALTER TABLE delivery_queue ADD COLUMN sent_seq INTEGER;
