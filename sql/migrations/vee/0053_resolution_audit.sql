-- Audit sample: a small, deterministic share of the decisions that would have been applied
-- goes to the analysts instead (decision REVIEW, audit true), so that live auto-apply
-- precision can be measured and the easy cases keep reaching the training labels.
ALTER TABLE vee.exception_resolution ADD COLUMN audit boolean NOT NULL DEFAULT false;
