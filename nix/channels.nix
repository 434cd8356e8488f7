# The release channels of flake.nix (nightly, stable, rc when present), each
# resolved by nix/resolve.nix, and the choices that span them: package names
# (rocm-<channel>-<target>), which channel `packages.default` comes from, and
# errors that name the channel that would serve a target another lacks.
#
# Builtins only, like resolve.nix: plain `nix eval` tests it.
{ channels, targets }:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    foldl'
    head
    map
    mapAttrs
    ;

  fail = message: throw "rocm-nightly: ${message}";

  resolvers = mapAttrs (
    channel: registry: import ./resolve.nix { inherit registry targets channel; }
  ) channels;

  # AMD's channels first, in the order packages.default prefers them.
  preferred = [
    "nightly"
    "stable"
    "rc"
  ];
  order =
    filter (c: channels ? ${c}) preferred ++ filter (c: !(builtins.elem c preferred)) (attrNames channels);

  defaultTarget = targets.defaultTarget;
  serving = target: filter (c: resolvers.${c}.canResolve target) order;

  # The nightly's default target when it is pinned, else the first channel that has it.
  defaultChannel =
    let
      candidates = serving defaultTarget;
    in
    if candidates == [ ] then head order else head candidates;


  # Resolves `target` in `channel`; a failure names the packages of other
  # channels that would serve it.
  resolveIn =
    channel: target:
    let
      resolver = resolvers.${channel} or (fail "no channel ${builtins.toJSON channel} in flake.nix (channels: ${concatStringsSep ", " order})");
      others = filter (c: c != channel) (serving target);
      hint = concatStringsSep ", " (map (c: "rocm-${c}-${target} (${c} ${(resolvers.${c}.resolve target).version})") others);
      problem = resolver.problem target;
    in
    if problem == null then
      resolver.resolve target
    else if others == [ ] then
      fail problem
    else
      fail "${problem}; another channel serves it: ${hint}";

  # Attribute name → { channel, target } over all channels.
  collect =
    field:
    foldl' (
      acc: c: acc // mapAttrs (_: target: { channel = c; inherit target; }) resolvers.${c}.${field}
    ) { } order;

  packageTargets = collect "packageTargets";
  unavailableTargets = collect "unavailableTargets";

  # Every target name any channel knows (the module's `target` enum).
  knownTargets = builtins.sort builtins.lessThan (
    attrNames (builtins.listToAttrs (map (name: { inherit name; value = null; }) (builtins.concatMap (c: resolvers.${c}.knownNames) order)))
  );

  # A notice for packages.default when it falls back from the nightly.
  defaultNotice =
    if defaultChannel == "nightly" || !(channels ? nightly) then
      null
    else
      "rocm-nightly: packages.default is rocm-${defaultChannel}-${defaultTarget} (${defaultChannel} ${(resolvers.${defaultChannel}.resolve defaultTarget).version}): the nightly channel has no pinned tarball for ${defaultTarget} (`nix run .#update` pins one)";
in
{
  inherit
    resolvers
    targets
    order
    defaultTarget
    defaultChannel
    resolveIn
    packageTargets
    unavailableTargets
    knownTargets
    defaultNotice
    ;
  # Package names of one channel: the nightly's smoke checks, the default images.
  packageTargetsOf = channel: resolvers.${channel}.packageTargets;
}
