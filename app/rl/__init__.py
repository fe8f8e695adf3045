"""Reinforcement learning for execution: a gymnasium environment on the model's signal with the
risk engine inside (``env``), and a DQN that learns in it (``agent``). docs/RL.md."""
