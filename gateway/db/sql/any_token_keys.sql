-- Whether some org has a live token key: end-user tokens are on when one has (or deployment-wide keys are set).
SELECT EXISTS (SELECT 1 FROM end_user_token_keys WHERE revoked_at IS NULL)
