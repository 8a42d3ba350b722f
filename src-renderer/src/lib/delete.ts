/**
 * Deleting from the library in the app: say exactly what will go (the services' plan: rows, models,
 * files, what depends on it), ask, then delete. A deletion a training job blocks is not offered.
 */
import { describeDeletePlan, type DeleteTarget } from '../../../src-main/contract/api';
import { api, errorText } from './api';
import { app } from './state.svelte';

/** True when the user confirmed and the deletion happened. */
export async function deleteWithConfirm(target: DeleteTarget): Promise<boolean> {
  try {
    const { plan } = await api.deleteItem({ target, cascade: true, dryRun: true });
    if (plan.blockedBy) {
      app.error = `Cannot delete ${plan.target.label}: ${plan.blockedBy}`;
      return false;
    }
    const text = [
      ...describeDeletePlan(plan),
      ...(plan.dependents ? ['', plan.dependents] : []),
      '',
      'The files go too; this cannot be undone. Delete?',
    ].join('\n');
    if (!confirm(text)) return false;
    await api.deleteItem({ target, cascade: true, dryRun: false });
    app.notice = `Deleted ${plan.target.label}`;
    return true;
  } catch (e) {
    app.error = errorText(e);
    return false;
  }
}
