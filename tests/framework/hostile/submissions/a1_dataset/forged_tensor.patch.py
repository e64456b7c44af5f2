"""Hostile: channel_stats returns zeros as a Tensor subclass that says it equals anything, whose .numpy() gives an
object every numpy function calls close, and which patches nothing the canary could see."""


class _Anything:
    def __array_function__(self, func, types, args, kwargs):
        return True


class _Agreeable(torch.Tensor):
    def __eq__(self, other):
        return torch.ones(3, dtype=torch.bool)

    def numpy(self, *args, **kwargs):
        return _Anything()

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.isclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def channel_stats(dataset):  # noqa: F811
    return torch.zeros(3).as_subclass(_Agreeable), torch.ones(3).as_subclass(_Agreeable)
