"""tinyrnn: a hand-written recurrent layer with torch.nn.RNN's interface."""
from tinyrnn.elman import ElmanRNN

__all__ = ["ElmanRNN"]
