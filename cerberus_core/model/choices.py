"""What a model may be asked to be, torch-free, so a config is checked without loading torch: the
poolers and head initialisations CerberusForRanking implements, and the largest sizes it accepts
(checked before anything is allocated)."""
POOLERS = ("mean_prob", "mean_logit", "learned")
HEAD_INITS = ("copy", "independent")
MAX_HEADS = 64  # ranking heads of one model (the paper's students have 3)
MAX_LAYERS = 128  # body_layers and head_layers each
