import * as vscode from 'vscode';
import type { Profile } from '../../../protocol/api';
import { UserCancelled } from '../commands/wrapCommand';
import { profileDetail } from '../model/agentPresentation';

/** Quick pick of the broker's profiles, each with its limits and allowed hosts; default first. */
export async function pickProfile(profiles: Profile[], defaultProfile: string): Promise<Profile> {
  const ordered = [...profiles].sort(
    (a, b) => Number(b.name === defaultProfile) - Number(a.name === defaultProfile),
  );
  const picked = await vscode.window.showQuickPick(
    ordered.map((profile) => ({
      label: profile.name,
      description: profile.description,
      detail: profileDetail(profile),
      profile,
    })),
    {
      title: 'agentvm: choose a profile',
      placeHolder: 'Which agent, on what VM, with what limits',
    },
  );
  if (!picked) throw new UserCancelled();

  return picked.profile;
}
