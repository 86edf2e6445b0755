import {
  lastAppliedAnnotations,
  parsePolicyAnnotations,
  policyAnnotationChanges,
} from './policyAnnotations';

describe('policyAnnotationChanges', () => {
  const annotations = parsePolicyAnnotations({
    'ferry.dev/spot': 'enabled',
    'ferry.dev/permanent-ratio': '0.3',
    'ferry.dev/migration': 'teleport',
    'app.kubernetes.io/name': 'valkey',
  });

  it('applies every well-formed annotation the first time', () => {
    expect(policyAnnotationChanges(annotations, {})).toEqual({
      applied: {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.3',
      },
      changed: { enabled: true, permanentRatio: 0.3 },
    });
  });

  it('changes only the fields whose annotation changed since it was last applied', () => {
    expect(
      policyAnnotationChanges(annotations, {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.5',
      }).changed,
    ).toEqual({ permanentRatio: 0.3 });
    expect(
      policyAnnotationChanges(annotations, {
        'ferry.dev/spot': 'enabled',
        'ferry.dev/permanent-ratio': '0.3',
      }).changed,
    ).toEqual({});
  });

  it('never applies a malformed annotation, and says why', () => {
    expect(annotations.errors).toEqual([
      "ferry.dev/migration is 'teleport'; use one of auto, valkey, checkpoint, volume, reschedule",
    ]);
  });
});

describe('lastAppliedAnnotations', () => {
  it.each([undefined, '', 'not json', '[1]', 'null'])(
    'reads %p as nothing applied',
    text => expect(lastAppliedAnnotations(text)).toEqual({}),
  );

  it('reads what was kept', () => {
    expect(lastAppliedAnnotations('{"ferry.dev/spot":"enabled"}')).toEqual({
      'ferry.dev/spot': 'enabled',
    });
  });
});
